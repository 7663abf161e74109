//! Session dimensions of rows imported from another analytics tool, derived by the same rules
//! as a live hit's (pipeline::put_dimensions): referrer naming, UTM, channel, browser and OS
//! names, platform, screen class. Importers hand over what the other tool recorded; whatever
//! it did not record stays empty.

use crate::channel::channel;
use crate::dims::{self, UrlParts};
use crate::hit::ClientHints;
use crate::referrer;
use crate::ua::{self, UaInfo, UaParser};

/// What another tool recorded about a visit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    /// A referrer URL or a name ("Google", "news.ycombinator.com").
    pub referrer: String,
    /// A campaign source, as `utm_source` would carry it.
    pub utm_source: String,
    /// The User-Agent header; parsed only when `browser` and `os` are both empty.
    pub user_agent: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    /// Screen width in pixels, 0 = unknown.
    pub width: i64,
}

/// The derived dimensions, named as in rows::Dims.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Derived {
    pub referrer: String,
    pub referrer_name: String,
    pub channel: String,
    pub utm_source: String,
    pub ua: UaInfo,
    pub screen_class: String,
    pub screen_width: u32,
}

/// The dimensions of one recorded visit to `site_hostname`. `parser` may be None when no row
/// needs a User-Agent parsed (building one compiles the uap rules).
pub fn derive(parser: Option<&UaParser>, site_hostname: &str, r: &Recorded) -> Derived {
    let mut url = UrlParts::default();
    let source = r.utm_source.trim();
    if !source.is_empty() {
        url.query.push(("utm_source".into(), source.into()));
    }
    let resolved = referrer::resolve(&r.referrer, &url, site_hostname);
    let utm = dims::utm(&url, &resolved.name);
    let ua = match parser {
        Some(p) if r.browser.trim().is_empty() && r.os.trim().is_empty() => {
            p.parse(&r.user_agent, &ClientHints::default())
        }
        _ => ua::named(&r.browser, &r.browser_version, &r.os, &r.os_version),
    };
    Derived {
        channel: channel(&resolved, &utm, false).to_string(),
        referrer: resolved.referrer,
        referrer_name: resolved.name,
        utm_source: utm.source,
        ua,
        screen_class: dims::screen_class(r.width).to_string(),
        screen_width: r.width.clamp(0, i64::from(u32::MAX)) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(referrer: &str, utm_source: &str, browser: &str, os: &str, width: i64) -> Recorded {
        let (b, bv) = browser.split_once(' ').unwrap_or((browser, ""));
        let (o, ov) = os.split_once(' ').unwrap_or((os, ""));
        Recorded {
            referrer: referrer.into(),
            utm_source: utm_source.into(),
            browser: b.into(),
            browser_version: bv.into(),
            os: o.into(),
            os_version: ov.into(),
            width,
            ..Recorded::default()
        }
    }

    type Given = (&'static str, &'static str, &'static str, &'static str, i64);
    type Want = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        bool,
        bool,
        &'static str,
    );

    #[test]
    fn derives_like_a_live_hit() {
        // (referrer, utm_source, browser, os, width) ->
        // (referrer, name, channel, browser, version, os, version, desktop, mobile, class)
        #[rustfmt::skip]
        let cases: &[(Given, Want)] = &[
            (("https://www.google.com/search", "", "Chrome 86.0.4240", "macOS 10.15.7", 1440),
             ("https://www.google.com/search", "Google", "Organic Search", "Chrome", "86.0", "Mac", "10.15", true, false, "HD")),
            (("https://news.ycombinator.com/item", "", "Firefox 125", "Windows 10", 1920),
             ("https://news.ycombinator.com/item", "Hacker News", "Organic Social", "Firefox", "125", "Windows", "10", true, false, "Full HD")),
            (("https://blog.example.org/post", "", "Safari 17.4", "iOS 17.4", 390),
             ("https://blog.example.org/post", "blog.example.org", "Referral", "Safari", "17.4", "iOS", "17.4", false, true, "XS")),
            (("", "newsletter", "", "", 0),
             ("", "newsletter", "Direct", "", "", "", "", false, false, "")),
            (("", "", "Chrome 120", "Android 14", 412),
             ("", "", "Direct", "Chrome", "120", "Android", "14", false, true, "XS")),
            (("https://example.com/other", "", "", "Ubuntu 22.04", 0),
             ("", "", "Direct", "", "", "Linux", "", true, false, "")),
        ];
        for &((referrer, source, browser, os, width), want) in cases {
            let d = derive(
                None,
                "example.com",
                &recorded(referrer, source, browser, os, width),
            );
            let have = (
                d.referrer.as_str(),
                d.referrer_name.as_str(),
                d.channel.as_str(),
                d.ua.browser.as_str(),
                d.ua.browser_version.as_str(),
                d.ua.os.as_str(),
                d.ua.os_version.as_str(),
                d.ua.desktop,
                d.ua.mobile,
                d.screen_class.as_str(),
            );
            assert_eq!(have, want, "{referrer:?} {source:?} {browser:?} {os:?}");
        }
    }

    #[test]
    fn utm_source_is_kept() {
        let d = derive(None, "example.com", &recorded("", "newsletter", "", "", 0));
        assert_eq!(d.utm_source, "newsletter");
    }
}
