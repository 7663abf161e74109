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
//! A salt never changes while it is kept, so each process remembers the ones it has read (the
//! days the env keeps: the newest it has seen and the day before), and a hit reads no LMDB
//! transaction for its salt.
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
    /// Salts read or made by this process, newest day last, at most `REMEMBERED`.
    known: parking_lot::RwLock<Vec<(String, Salt)>>,
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
            known: parking_lot::RwLock::new(Vec::new()),
        };
        salts.migrate(legacy)?;
        Ok(salts)
    }

    /// The salt of a day (`YYYYMMDD`), if it has one.
    pub fn get(&self, day: &str) -> Result<Option<Salt>> {
        if let Some(salt) = self.remembered(day) {
            return Ok(Some(salt));
        }
        let rtxn = self.env.read_txn()?;
        let salt = self.db.get(&rtxn, day.as_bytes())?.and_then(to_salt);
        if let Some(salt) = salt {
            self.remember(day, salt);
        }
        Ok(salt)
    }

    /// A salt this process has seen, for a day the env still keeps as far as it knows (the
    /// newest remembered day or the one before): older days are read again, so that what a
    /// newer day's creation deleted is not used.
    fn remembered(&self, day: &str) -> Option<Salt> {
        let known = self.known.read();
        let newest = &known.last()?.0;
        if day != newest.as_str() && day < previous_day(newest).as_str() {
            return None;
        }
        known.iter().find(|(d, _)| d == day).map(|(_, s)| *s)
    }

    fn remember(&self, day: &str, salt: Salt) {
        let mut known = self.known.write();
        if known.iter().any(|(d, _)| d == day) {
            return;
        }
        let at = known.partition_point(|(d, _)| d.as_str() < day);
        known.insert(at, (day.to_string(), salt));
        if known.len() > REMEMBERED {
            known.remove(0);
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
            self.remember(day, salt);
            return Ok(salt);
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
        self.remember(day, salt);
        Ok(salt)
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
    fn remembered_salts_are_the_stored_ones_and_deleted_days_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let salts = open(dir.path());
        let first = salts.get_or_create("20260101").unwrap();
        assert_eq!(salts.get("20260101").unwrap(), Some(first));
        assert_eq!(salts.get_or_create("20260101").unwrap(), first);
        let second = salts.get_or_create("20260102").unwrap();
        assert_ne!(first, second);
        // Both kept by the env and remembered.
        assert_eq!(salts.remembered("20260101"), Some(first));
        assert_eq!(salts.remembered("20260102"), Some(second));
        assert_eq!(salts.get("20260101").unwrap(), Some(first));
        // The 3rd deletes the 1st from the env: it is not answered from memory either.
        salts.get_or_create("20260103").unwrap();
        assert_eq!(salts.days().unwrap(), ["20260102", "20260103"]);
        assert_eq!(salts.remembered("20260101"), None);
        assert_eq!(salts.get("20260101").unwrap(), None);
        assert_eq!(salts.get("20260102").unwrap(), Some(second));
        // At most REMEMBERED days, the oldest forgotten first.
        for day in ["20260104", "20260105", "20260106", "20260107"] {
            salts.get_or_create(day).unwrap();
        }
        let known: Vec<String> = salts.known.read().iter().map(|(d, _)| d.clone()).collect();
        assert_eq!(known, ["20260104", "20260105", "20260106", "20260107"]);
    }
}
