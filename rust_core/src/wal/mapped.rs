//! Appends by memory copy: a WAL file mapped shared, its blocks reserved ahead with fallocate.
//!
//! A record copied into a shared mapping of the file is in the page cache when the copy ends,
//! as it is when write() returns: a killed process loses nothing it acknowledged, and an fsync of
//! the file writes the mapped pages like written ones. The copy saves the write() system call of
//! every append. Blocks are reserved `CHUNK` bytes at a time before any byte of them is written
//! through the mapping, so a full disk is an error of the reservation (the writer falls back to
//! write(), which reports it) and never a SIGBUS. The file is longer than its records: the
//! reserved tail is zeros, which the decoder (frame.rs) reads as the end of the records.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// Bytes reserved per fallocate.
pub(super) const CHUNK: u64 = 1 << 20;
/// Address space mapped per file; a generation that outgrows it continues with write().
pub(super) const SPAN: usize = 256 << 20;

pub(super) struct Mapped {
    ptr: NonNull<u8>,
    /// Bytes of the file reserved (and as long as the file is).
    reserved: u64,
}

// SAFETY: the mapping is owned by one `Wal`, only written under the storage state lock.
unsafe impl Send for Mapped {}

impl Mapped {
    /// Map `file` (new and empty) for appends; None when the system refuses the mapping.
    pub(super) fn new(file: &File) -> Option<Mapped> {
        // SAFETY: a shared mapping of a file we own; no byte past the file's reserved length
        // is touched (see `append`), so the span beyond it is never accessed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SPAN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(Mapped {
            ptr: NonNull::new(ptr.cast::<u8>())?,
            reserved: 0,
        })
    }

    /// Copy `record` to offset `at`, reserving blocks first when it reaches past them. False
    /// (nothing copied) when the blocks cannot be reserved or the span is used up.
    pub(super) fn append(&mut self, file: &File, at: u64, record: &[u8]) -> bool {
        let end = at + record.len() as u64;
        if end > SPAN as u64 || !self.reserve(file, end) {
            return false;
        }
        // SAFETY: [at, end) lies inside the mapping (end <= SPAN) and inside the file's
        // reserved blocks (end <= reserved); `record` is not part of the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                record.as_ptr(),
                self.ptr.as_ptr().add(at as usize),
                record.len(),
            );
        }
        true
    }

    /// Bytes of the file reserved so far.
    pub(super) fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Reserve the file's blocks up to `end` (whole `CHUNK`s, at most `SPAN`) and fault their
    /// pages in; false when the blocks cannot be reserved.
    pub(super) fn reserve(&mut self, file: &File, end: u64) -> bool {
        if end > self.reserved {
            let want = end.div_ceil(CHUNK) * CHUNK;
            let want = want.min(SPAN as u64);
            // SAFETY: fallocate on a descriptor we own, growing the file to `want` bytes.
            let rc = unsafe {
                libc::fallocate(
                    file.as_raw_fd(),
                    0,
                    self.reserved as libc::off_t,
                    (want - self.reserved) as libc::off_t,
                )
            };
            if rc != 0 {
                return false;
            }
            // Fault the new pages in writable now, in one call, rather than one page fault per
            // 4 KiB of later copies (a kernel without it just leaves them to fault).
            // SAFETY: the range lies inside the mapping and inside the file's reserved length.
            unsafe {
                libc::madvise(
                    self.ptr.as_ptr().add(self.reserved as usize).cast(),
                    (want - self.reserved) as usize,
                    libc::MADV_POPULATE_WRITE,
                );
            }
            self.reserved = want;
        }
        true
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; its dirty pages stay in the page
        // cache and are written back (or fsynced through the file) as usual.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), SPAN);
        }
    }
}
