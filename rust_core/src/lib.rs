//! trail's hot path. `lib.rs` only declares modules and registers the Python module;
//! the logic lives in plain-Rust modules, the PyO3 surface in `glue`.

pub mod bots;
pub mod browser;
pub mod channel;
pub mod counters;
pub mod dims;
pub mod drops;
pub mod errors;
pub mod fingerprint;
pub mod geo;
pub mod hit;
pub mod imported;
pub mod ip;
pub mod kernels;
pub mod pipeline;
pub mod ratelimit;
pub mod redis_store;
pub mod referrer;
pub mod rows;
pub mod rules;
pub mod salts;
pub mod segments;
pub mod session;
pub mod ua;
pub mod validate;
pub mod wal;

#[cfg(feature = "python")]
mod glue;

/// The hot path allocates many short-lived strings per hit; mimalloc is markedly faster at
/// that than glibc malloc (profiled: ~14% of worker CPU in malloc/free).
#[cfg(feature = "python")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Give the pages the allocator (mimalloc) holds free in this thread's heap back to the
/// system, and those every thread's heap has marked for it.
pub fn release_memory() {
    // SAFETY: mi_collect only walks and purges the allocator's own free pages.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _core(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    glue::register(m)
}
