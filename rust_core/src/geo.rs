//! GeoIP from a MaxMind-format .mmdb (optional).
//!
//! Users supply the database (GeoLite2-City, DB-IP City Lite, ...) or let `trail geoip update`
//! download DB-IP's; without one every lookup is an empty Location. A lookup never fails: a
//! broken record is treated as "no match", because a missing country is better than a dropped hit.
//! `reload` swaps in a new database while lookups go on (they finish on the old one).

use crate::errors::{CoreError, Result};
use maxminddb::Reader;
use parking_lot::RwLock;
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
    reader: RwLock<Option<Reader<Vec<u8>>>>,
}

/// What `check` found in a database file: its metadata and the locations of the probes.
#[derive(Clone, Debug)]
pub struct DbInfo {
    pub database_type: String,
    pub build_epoch: u64,
    pub ip_version: u16,
    pub node_count: u32,
    pub locations: Vec<Location>,
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
            Some(p) => Some(read(p)?),
        };
        Ok(Geo {
            reader: RwLock::new(reader),
        })
    }

    /// A Geo without a database.
    pub fn disabled() -> Geo {
        Geo {
            reader: RwLock::new(None),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.reader.read().is_some()
    }

    /// Replace the database with the one at `path`. The file is read before the swap, so
    /// lookups go on meanwhile; on error the current database stays.
    pub fn reload(&self, path: &str) -> Result<()> {
        let new = read(path)?;
        let old = self.reader.write().replace(new);
        drop(old); // freed after the lock is released
        Ok(())
    }

    pub fn lookup(&self, ip: IpAddr) -> Location {
        let guard = self.reader.read();
        let Some(reader) = guard.as_ref() else {
            return Location::default();
        };
        lookup_in(reader, ip)
    }
}

fn read(path: &str) -> Result<Reader<Vec<u8>>> {
    Reader::open_readfile(path)
        .map_err(|e| CoreError::Config(format!("GeoIP database {path}: {e}")))
}

/// Open the database at `path`, verify its whole structure (search tree, data section) and look
/// up `probes`: the check of a downloaded file before it replaces the one in use.
pub fn check(path: &str, probes: &[IpAddr]) -> Result<DbInfo> {
    let reader = read(path)?;
    reader
        .verify()
        .map_err(|e| CoreError::Config(format!("GeoIP database {path}: {e}")))?;
    let m = reader.metadata();
    Ok(DbInfo {
        database_type: m.database_type.clone(),
        build_epoch: m.build_epoch,
        ip_version: m.ip_version,
        node_count: m.node_count,
        locations: probes.iter().map(|ip| lookup_in(&reader, *ip)).collect(),
    })
}

fn lookup_in(reader: &Reader<Vec<u8>>, ip: IpAddr) -> Location {
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
    fn reload_swaps_the_database_and_keeps_it_on_error() {
        let geo = Geo::disabled();
        let london: IpAddr = "81.2.69.142".parse().expect("ip");
        assert_eq!(geo.lookup(london), Location::default());
        geo.reload(FIXTURE).expect("fixture reloads");
        assert!(geo.is_enabled());
        assert_eq!(geo.lookup(london), loc("gb", "England", "London"));
        assert!(matches!(
            geo.reload("/nonexistent/x.mmdb"),
            Err(CoreError::Config(_))
        ));
        assert_eq!(geo.lookup(london), loc("gb", "England", "London"));
    }

    #[test]
    fn lookups_go_on_during_reloads() {
        let geo = Geo::open(Some(FIXTURE)).expect("fixture opens");
        let london: IpAddr = "81.2.69.142".parse().expect("ip");
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..50 {
                    geo.reload(FIXTURE).expect("reload");
                }
            });
            for _ in 0..2000 {
                assert_eq!(geo.lookup(london).country_code, "gb");
            }
        });
    }

    #[test]
    fn check_verifies_and_probes() {
        let probes: Vec<IpAddr> = ["81.2.69.142", "8.8.8.8"]
            .iter()
            .map(|ip| ip.parse().expect("ip"))
            .collect();
        let info = check(FIXTURE, &probes).expect("fixture checks");
        assert_eq!(info.database_type, "GeoLite2-City");
        assert_eq!(info.ip_version, 6);
        assert!(info.node_count > 0 && info.build_epoch > 0);
        assert_eq!(
            info.locations,
            vec![loc("gb", "England", "London"), Location::default()]
        );
        // A cut-off file (the metadata is at the end) and garbage are refused.
        let bytes = std::fs::read(FIXTURE).expect("read fixture");
        let dir = tempfile::tempdir().expect("tempdir");
        let cut = dir.path().join("cut.mmdb");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let cut = cut.to_str().expect("utf8");
        assert!(matches!(check(cut, &probes), Err(CoreError::Config(_))));
        // A damaged search tree behind intact metadata is caught by the verification.
        let mut damaged = bytes.clone();
        for b in damaged.iter_mut().take(64) {
            *b = 0xff;
        }
        let bad = dir.path().join("bad.mmdb");
        std::fs::write(&bad, &damaged).expect("write");
        let bad = bad.to_str().expect("utf8");
        assert!(matches!(check(bad, &probes), Err(CoreError::Config(_))));
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
