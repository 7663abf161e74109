//! Replay on open: WAL files this worker id left behind (a crash, or a kill after the last
//! write()) are sealed into segments, oldest first, then deleted.

use super::files::list_wal_files;
use super::frame::{decode_records, Tail};
use super::Shared;
use crate::errors::Result;
use std::fs;

impl Shared {
    pub(super) fn replay(&self) -> Result<()> {
        let files = list_wal_files(&self.wal_dir, self.config.worker_id)?;
        let mut state = self.state.lock();
        state.last_gen = files.iter().map(|(gen, _)| *gen).max().unwrap_or(0);
        drop(state);
        for (gen, path) in files {
            let bytes = fs::read(&path)?;
            let (batches, tail) = decode_records(&bytes);
            self.seal_generation(gen, &batches, true)?;
            if tail == Tail::Corrupt {
                // Records after a damaged one may still be readable by hand: keep them aside.
                fs::rename(&path, path.with_extension("wal.corrupt"))?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::files::wal_path;
    use super::super::frame::encode_record;
    use super::super::testkit::*;
    use super::super::Storage;
    use std::fs::{self, OpenOptions};
    use std::os::unix::fs::FileExt;

    #[test]
    fn crash_replay_recovers_every_row_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 3)).expect("open");
        for i in 0..10 {
            storage.append(hit("s", DAY1 + i)).expect("append");
        }
        storage.seal().expect("seal");
        for i in 0..5 {
            storage.append(hit("s", DAY1 + 100 + i)).expect("append");
        }
        storage.abandon();
        assert_eq!(
            wal_files(dir.path()).len(),
            1,
            "unsealed generation left on disk"
        );

        let storage = Storage::open(config(dir.path(), 3)).expect("reopen");
        assert!(wal_files(dir.path()).is_empty(), "replayed WAL deleted");
        let c = counts(dir.path());
        assert_eq!(c[&key("sessions", "s", "2023-11-15")], 30);
        assert_eq!(c[&key("page_views", "s", "2023-11-15")], 15);
        storage.close().expect("close");
    }

    #[test]
    fn torn_tail_is_ignored() {
        // (name, bytes appended after two good records given a good record, .corrupt expected)
        type MakeTail = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        let cases: [(&str, MakeTail, bool); 4] = [
            ("short header", Box::new(|_| vec![1, 2, 3]), false),
            (
                "short payload",
                Box::new(|rec| rec[..rec.len() - 1].to_vec()),
                false,
            ),
            (
                "bad crc at the end",
                Box::new(|rec| {
                    let mut r = rec.to_vec();
                    r[4] ^= 0xff;
                    r
                }),
                false,
            ),
            (
                "bad crc in the middle",
                Box::new(|rec| {
                    let mut r = rec.to_vec();
                    r[4] ^= 0xff;
                    r.extend_from_slice(rec);
                    r
                }),
                true,
            ),
        ];
        for (name, tail, corrupt) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let storage = Storage::open(config(dir.path(), 1)).expect("open");
            storage.append(hit("s", DAY1)).expect("append");
            storage.append(hit("s", DAY1)).expect("append");
            storage.abandon();
            let wal = dir.path().join("wal").join(&wal_files(dir.path())[0]);
            let record = encode_record(&hit("s", DAY1)).expect("encode");
            // Where the next record would have gone: right after the two (in the reserved
            // zeros of the mapped file).
            let file = OpenOptions::new().write(true).open(&wal).expect("wal");
            let end = 2 * record.len() as u64;
            file.write_all_at(&tail(&record), end).expect("write tail");

            let storage = Storage::open(config(dir.path(), 1)).expect("reopen");
            let c = counts(dir.path());
            assert_eq!(c[&key("page_views", "s", "2023-11-15")], 2, "{name}");
            let left = wal_files(dir.path());
            assert_eq!(left.len(), usize::from(corrupt), "{name}: {left:?}");
            if corrupt {
                assert!(left[0].ends_with(".wal.corrupt"), "{name}");
            }
            storage.close().expect("close");
        }
    }

    #[test]
    fn replay_does_not_duplicate_segments_already_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 2)).expect("open");
        storage.append(hit("s", DAY1)).expect("append");
        storage.append(hit("s", DAY1 - 5)).expect("append");
        // Crash after the generation's segments were written but before its WAL was deleted.
        {
            let state = storage.shared.state.lock();
            let wal = state.current.as_ref().expect("current");
            storage
                .shared
                .seal_generation(wal.gen, &wal.rows, false)
                .expect("segments");
        }
        let before = counts(dir.path());
        assert_eq!(before[&key("page_views", "s", "2023-11-15")], 1);
        storage.abandon();

        let storage = Storage::open(config(dir.path(), 2)).expect("reopen");
        assert_eq!(
            counts(dir.path()),
            before,
            "replay rewrote the generation, not added to it"
        );
        storage.close().expect("close");
    }

    #[test]
    fn generations_increase_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gen_of = |storage: &Storage| {
            storage
                .shared
                .state
                .lock()
                .current
                .as_ref()
                .map(|w| w.gen)
                .expect("gen")
        };
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.append(hit("s", DAY1)).expect("append");
        let first = gen_of(&storage);
        storage.abandon();
        // A WAL from "the future" (clock stepped back): the next generation must still be newer.
        let future = first + 1_000_000_000_000;
        fs::rename(
            wal_path(&dir.path().join("wal"), 0, first),
            wal_path(&dir.path().join("wal"), 0, future),
        )
        .expect("rename");
        let storage = Storage::open(config(dir.path(), 0)).expect("reopen");
        storage.append(hit("s", DAY1)).expect("append");
        assert!(gen_of(&storage) > future);
        storage.close().expect("close");
    }
}
