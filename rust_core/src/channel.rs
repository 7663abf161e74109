//! GA4-style channel grouping (reference section 4, scenario 9). OWNER: helper "dims".

use crate::dims::Utm;
use crate::referrer::Referrer;

/// The channel of a session, first match wins; "Direct" when nothing matches.
pub fn channel(referrer: &Referrer, utm: &Utm, click_id: bool) -> &'static str {
    let _ = (referrer, utm, click_id);
    todo!()
}
