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
}

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
        let salts = Salts { env, db };
        salts.migrate(legacy)?;
        Ok(salts)
    }

    /// The salt of a day (`YYYYMMDD`), if it has one.
    pub fn get(&self, day: &str) -> Result<Option<Salt>> {
        let rtxn = self.env.read_txn()?;
        Ok(self
            .db
            .get(&rtxn, day.as_bytes())?
            .and_then(|v| v.try_into().ok()))
    }

    /// The salt of a day, created and committed to disk first if it has none yet. Concurrent
    /// callers (other workers) serialise on LMDB's writer lock and all get the first one made.
    pub fn get_or_create(&self, day: &str) -> Result<Salt> {
        if let Some(salt) = self.get(day)? {
            return Ok(salt);
        }
        let mut wtxn = self.env.write_txn()?;
        if let Some(salt) = self.db.get(&wtxn, day.as_bytes())?.and_then(to_salt) {
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
