//! Daily salts: the secret 16 bytes that key each UTC day's visitor ids (fingerprint.rs).
//!
//! Losing or changing a salt re-keys every visitor of its day, so salts do not share the session
//! state's NO_SYNC env (`state/`, which may lose its last commits in a power cut). They live in
//! their own small LMDB env, `<data_dir>/salts/`, opened with LMDB's default flags: a salt's
//! commit is fsynced before any visitor id made from it is stored. A salt is created at most
//! once per day, so the fsync costs nothing that matters.
//!
//! Keys: `YYYYMMDD` -> salt. Creating a day's salt deletes salts older than the day before it
//! (yesterday's is kept for the midnight rule).
//!
//! Each process remembers the salts it has read as of the env's last write transaction, which
//! it reads from the env's meta pages for every hit: a hit reads no LMDB transaction for its
//! salt, and once another process has written (made a day, deleting old ones, or made an old
//! day again for historical hits) the memory is read again rather than trusted.
//!
//! Earlier builds kept the salts in a `salts` database inside `state/`; `Salts::open` moves any
//! found there, so a running installation keeps today's visitor ids across the upgrade.

use crate::errors::Result;
use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, WithoutTls};
use std::path::Path;

pub type Salt = [u8; 16];

const MAP_SIZE: usize = 4 << 20;

pub struct Salts {
    env: Env<WithoutTls>,
    db: Database<'static, Bytes, Bytes>,
    /// Salts read by this process, as of one state of the env.
    known: parking_lot::RwLock<Known>,
}

/// Salts read by this process, newest day last, at most `REMEMBERED`, all read at or after the
/// env's write transaction `stamp`: a later write (another process making or deleting a day)
/// makes them stale.
#[derive(Default)]
struct Known {
    stamp: usize,
    days: Vec<(String, Salt)>,
}

const REMEMBERED: usize = 4;

impl Salts {
    /// Open (or create) the salts env in `dir`, then move the salts of `legacy` into it.
    pub fn open(dir: &Path, legacy: Legacy<'_>) -> Result<Salts> {
        crate::segments::create_dir_durable(dir)?;
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(MAP_SIZE).max_dbs(1).max_readers(256);
        // SAFETY: opened once per process (its SessionStore owns it), with the default, fully
        // synced flags.
        let env = unsafe { opts.open(dir)? };
        let wtxn = env.write_txn()?;
        let db = env
            .create_databases_and_commit(
                wtxn,
                |dbs, wtxn| -> std::result::Result<_, heed::Error> {
                    let db = dbs.create_database::<Bytes, Bytes>(wtxn, Some("salts"))?;
                    Ok(CommitOrAbort::<_, ()>::Commit(db))
                },
            )?
            .unwrap_commit();
        let salts = Salts {
            env,
            db,
            known: parking_lot::RwLock::new(Known::default()),
        };
        salts.migrate(legacy)?;
        Ok(salts)
    }

    /// The salt of a day (`YYYYMMDD`), if it has one.
    pub fn get(&self, day: &str) -> Result<Option<Salt>> {
        let stamp = self.stamp();
        if let Some(salt) = self.remembered(day, stamp) {
            return Ok(Some(salt));
        }
        let rtxn = self.env.read_txn()?;
        let salt = self.db.get(&rtxn, day.as_bytes())?.and_then(to_salt);
        if let Some(salt) = salt {
            self.remember(day, salt, stamp);
        }
        Ok(salt)
    }

    /// The env's last committed write transaction (read from its meta pages, no transaction).
    fn stamp(&self) -> usize {
        self.env.info().last_txn_id
    }

    /// A salt this process has read since the env last changed (`stamp`): any write, the
    /// deletion of old days included, makes the memory stale.
    fn remembered(&self, day: &str, stamp: usize) -> Option<Salt> {
        let known = self.known.read();
        if known.stamp != stamp {
            return None;
        }
        known.days.iter().find(|(d, _)| d == day).map(|(_, s)| *s)
    }

    /// Remember a salt read at or after `stamp`; what was remembered as of an earlier stamp
    /// is forgotten.
    fn remember(&self, day: &str, salt: Salt, stamp: usize) {
        let mut known = self.known.write();
        if known.stamp != stamp {
            if known.stamp > stamp {
                return; // remembered as of a newer state already
            }
            known.days.clear();
            known.stamp = stamp;
        }
        if known.days.iter().any(|(d, _)| d == day) {
            return;
        }
        let at = known.days.partition_point(|(d, _)| d.as_str() < day);
        known.days.insert(at, (day.to_string(), salt));
        if known.days.len() > REMEMBERED {
            known.days.remove(0);
        }
    }

    /// The salt of a day, created and committed to disk first if it has none yet. Concurrent
    /// callers (other workers) serialise on LMDB's writer lock and all get the first one made.
    pub fn get_or_create(&self, day: &str) -> Result<Salt> {
        if let Some(salt) = self.get(day)? {
            return Ok(salt);
        }
        let mut wtxn = self.env.write_txn()?;
        if let Some(salt) = self.db.get(&wtxn, day.as_bytes())?.and_then(to_salt) {
            return Ok(salt); // made by another process: remembered when next read
        }
        let salt: Salt = rand::random();
        self.db.put(&mut wtxn, day.as_bytes(), &salt)?;
        let cutoff = previous_day(day);
        let old: Vec<Vec<u8>> = self
            .db
            .iter(&wtxn)?
            .filter_map(|r| r.ok())
            .filter(|(k, _)| *k < cutoff.as_bytes())
            .map(|(k, _)| k.to_vec())
            .collect();
        for k in old {
            self.db.delete(&mut wtxn, &k)?;
        }
        wtxn.commit()?;
        Ok(salt) // remembered when next read, as of the env's state then
    }

    /// Every stored day, oldest first.
    pub fn days(&self) -> Result<Vec<String>> {
        let rtxn = self.env.read_txn()?;
        let mut out = Vec::new();
        for item in self.db.iter(&rtxn)? {
            let (k, _) = item?;
            out.push(String::from_utf8_lossy(k).into_owned());
        }
        Ok(out)
    }

    /// Copy the legacy salts that this env lacks, commit (fsynced), then empty the legacy table.
    fn migrate(&self, legacy: Legacy<'_>) -> Result<()> {
        let found: Vec<(Vec<u8>, Salt)> = {
            let rtxn = legacy.env.read_txn()?;
            let mut found = Vec::new();
            for item in legacy.db.iter(&rtxn)? {
                let (k, v) = item?;
                if let Some(salt) = to_salt(v) {
                    found.push((k.to_vec(), salt));
                }
            }
            found
        };
        if found.is_empty() {
            return Ok(());
        }
        let mut wtxn = self.env.write_txn()?;
        for (day, salt) in &found {
            // A salt already here is the one in use: it wins over the old copy.
            if self.db.get(&wtxn, day)?.is_none() {
                self.db.put(&mut wtxn, day, salt)?;
            }
        }
        wtxn.commit()?;
        // Only once the copies are on disk; if this clear is lost, the next open repeats the
        // (idempotent) copy.
        let mut wtxn = legacy.env.write_txn()?;
        legacy.db.clear(&mut wtxn)?;
        wtxn.commit()?;
        Ok(())
    }
}

/// Where earlier builds kept the salts: the `salts` table of the session state env.
pub struct Legacy<'a> {
    pub env: &'a Env<WithoutTls>,
    pub db: Database<'static, Bytes, Bytes>,
}

fn to_salt(bytes: &[u8]) -> Option<Salt> {
    bytes.try_into().ok()
}

fn previous_day(day: &str) -> String {
    chrono::NaiveDate::parse_from_str(day, "%Y%m%d")
        .ok()
        .and_then(|d| d.pred_opt())
        .map(|d| d.format("%Y%m%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Salts {
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.max_dbs(1);
        // SAFETY: a fresh env of this test only.
        let env = unsafe { opts.open(&state).unwrap() };
        let wtxn = env.write_txn().unwrap();
        let db = env
            .create_databases_and_commit(wtxn, |dbs, wtxn| -> std::result::Result<_, heed::Error> {
                let db = dbs.create_database::<Bytes, Bytes>(wtxn, Some("salts"))?;
                Ok(CommitOrAbort::<_, ()>::Commit(db))
            })
            .unwrap()
            .unwrap_commit();
        Salts::open(&dir.join("salts"), Legacy { env: &env, db }).unwrap()
    }

    #[test]
    fn a_day_deleted_and_made_again_by_another_process_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        // Another process on the same env, with a memory of its own.
        let b = Salts {
            env: a.env.clone(),
            db: a.db,
            known: parking_lot::RwLock::new(Known::default()),
        };
        let first = a.get_or_create("20260105").unwrap();
        assert_eq!(b.get("20260105").unwrap(), Some(first));
        b.get_or_create("20260106").unwrap();
        // `a` makes a newer day (deleting the 5th), then the 5th again (historical hits).
        a.get_or_create("20260107").unwrap();
        let again = a.get_or_create("20260105").unwrap();
        assert_ne!(again, first);
        // `b` never saw the 7th: its memory of the 5th is stale and must not be used.
        assert_eq!(b.get("20260105").unwrap(), Some(again));
        assert_eq!(b.get_or_create("20260105").unwrap(), again);
    }

    #[test]
    fn remembered_salts_are_the_stored_ones_and_deleted_days_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let salts = open(dir.path());
        let first = salts.get_or_create("20260101").unwrap();
        assert_eq!(salts.get("20260101").unwrap(), Some(first));
        assert_eq!(salts.get_or_create("20260101").unwrap(), first);
        let second = salts.get_or_create("20260102").unwrap();
        assert_ne!(first, second);
        // Both kept by the env, and remembered once read after the last write.
        assert_eq!(salts.remembered("20260101", salts.stamp()), None);
        assert_eq!(salts.get("20260101").unwrap(), Some(first));
        assert_eq!(salts.get("20260102").unwrap(), Some(second));
        assert_eq!(salts.remembered("20260101", salts.stamp()), Some(first));
        assert_eq!(salts.remembered("20260102", salts.stamp()), Some(second));
        // The 3rd deletes the 1st from the env: it is not answered from memory either.
        salts.get_or_create("20260103").unwrap();
        assert_eq!(salts.days().unwrap(), ["20260102", "20260103"]);
        assert_eq!(salts.remembered("20260101", salts.stamp()), None);
        assert_eq!(salts.get("20260101").unwrap(), None);
        assert_eq!(salts.get("20260102").unwrap(), Some(second));
        let known = |salts: &Salts| -> Vec<String> {
            salts
                .known
                .read()
                .days
                .iter()
                .map(|(d, _)| d.clone())
                .collect()
        };
        assert_eq!(known(&salts), ["20260102"]);
        // A write forgets what was read before it; a memory as of an older state is not kept.
        for day in ["20260104", "20260105", "20260106", "20260107"] {
            salts.get_or_create(day).unwrap();
            salts.get(day).unwrap();
        }
        salts.get("20260106").unwrap();
        assert_eq!(known(&salts), ["20260106", "20260107"]);
        salts.remember("20260101", first, salts.stamp() - 1);
        assert_eq!(known(&salts), ["20260106", "20260107"]);
    }
}
