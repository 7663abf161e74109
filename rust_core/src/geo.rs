//! GeoIP from a MaxMind-format .mmdb (optional). OWNER: helper "dims".

use crate::errors::Result;
use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Location {
    /// ISO 3166-1 alpha-2, lowercase.
    pub country_code: String,
    pub region: String,
    pub city: String,
}

pub struct Geo {
    _private: (),
}

impl Geo {
    /// Open the database at `path`; `None` gives a Geo that returns empty locations.
    pub fn open(path: Option<&str>) -> Result<Geo> {
        let _ = path;
        todo!()
    }

    pub fn lookup(&self, ip: IpAddr) -> Location {
        let _ = ip;
        todo!()
    }
}
