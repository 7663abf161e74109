//! GeoIP from a MaxMind-format .mmdb (optional).
//!
//! Users supply the database (GeoLite2-City, DB-IP City Lite, ...); without one every lookup
//! is an empty Location. A lookup never fails: a broken record is treated as "no match",
//! because a missing country is better than a dropped hit.

use crate::errors::{CoreError, Result};
use maxminddb::Reader;
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Location {
    /// ISO 3166-1 alpha-2, lowercase.
    pub country_code: String,
    pub region: String,
    pub city: String,
}

pub struct Geo {
    reader: Option<Reader<Vec<u8>>>,
}

// Only the fields trail stores; decoding these instead of the full City record skips every
// other language and the location block. Unknown fields are ignored by serde.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Country<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Named<'a>>>,
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
}

#[derive(Deserialize)]
struct Country<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

fn english(named: Option<&Named<'_>>) -> String {
    named
        .and_then(|n| n.names.as_ref())
        .and_then(|n| n.en)
        .unwrap_or_default()
        .to_string()
}

impl Geo {
    /// Open the database at `path`; `None` gives a Geo that returns empty locations.
    /// A path that is given but unreadable is a configuration error: the operator asked for geo.
    pub fn open(path: Option<&str>) -> Result<Geo> {
        let reader = match path {
            None => None,
            Some(p) => Some(
                Reader::open_readfile(p)
                    .map_err(|e| CoreError::Config(format!("GeoIP database {p}: {e}")))?,
            ),
        };
        Ok(Geo { reader })
    }

    /// A Geo without a database.
    pub fn disabled() -> Geo {
        Geo { reader: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.reader.is_some()
    }

    pub fn lookup(&self, ip: IpAddr) -> Location {
        let Some(reader) = &self.reader else {
            return Location::default();
        };
        // IPv6 in an IPv4-only database, or a corrupt record: no location, never an error.
        let Ok(result) = reader.lookup(ip) else {
            return Location::default();
        };
        let Ok(Some(rec)) = result.decode::<Record>() else {
            return Location::default();
        };
        Location {
            country_code: rec
                .country
                .and_then(|c| c.iso_code)
                .unwrap_or_default()
                .to_ascii_lowercase(),
            region: english(rec.subdivisions.as_ref().and_then(|s| s.first())),
            city: english(rec.city.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/geo-test.mmdb");

    fn loc(cc: &str, region: &str, city: &str) -> Location {
        Location {
            country_code: cc.into(),
            region: region.into(),
            city: city.into(),
        }
    }

    #[test]
    fn lookups_in_fixture() {
        let geo = Geo::open(Some(FIXTURE)).expect("fixture opens");
        assert!(geo.is_enabled());
        let cases = [
            ("81.2.69.142", loc("gb", "England", "London")),
            ("89.160.20.112", loc("se", "Östergötland", "Linköping")),
            ("2001:db8::1", loc("de", "Berlin", "Berlin")),
            ("203.0.113.9", loc("au", "", "")),
            // Not in the database.
            ("8.8.8.8", Location::default()),
            ("::1", Location::default()),
            ("2a00::1", Location::default()),
        ];
        for (ip, want) in cases {
            let ip: IpAddr = ip.parse().expect("test ip");
            assert_eq!(geo.lookup(ip), want, "{ip}");
        }
    }

    #[test]
    fn geo_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Geo>();
    }

    #[test]
    fn no_database_gives_empty_locations() {
        let geo = Geo::open(None).expect("no db is fine");
        assert!(!geo.is_enabled());
        assert_eq!(
            geo.lookup("81.2.69.142".parse().expect("ip")),
            Location::default()
        );
    }

    #[test]
    fn unreadable_database_is_a_config_error() {
        assert!(matches!(
            Geo::open(Some("/nonexistent/x.mmdb")),
            Err(CoreError::Config(_))
        ));
        let dir = std::env::temp_dir().join("trail-geo-garbage.mmdb");
        std::fs::write(&dir, b"not an mmdb file").expect("write temp");
        let path = dir.to_str().expect("utf8 path");
        assert!(matches!(Geo::open(Some(path)), Err(CoreError::Config(_))));
        let _ = std::fs::remove_file(&dir);
    }
}
