//! Parsers for every log layout, on bytes, borrowing from their input.
//!
//! Input: one line or one multi-line entry. Output: borrowed field views (`AccessLine`,
//! `ErrorLine`, `FpmLine`). Invariants: no allocation per line; no panic on any bytes;
//! `None` means malformed.

/// `memmem::find(haystack, literal)` with the searcher built once per call site: building
/// one per call (what `memmem::find` does) was about 3% of a scan's cycles on a noisy error
/// log (perf: `Searcher::new`), where every entry runs several searches.
macro_rules! find {
    ($h:expr, $n:expr) => {{
        static F: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($n));
        F.find($h)
    }};
}

/// `memmem::rfind` likewise.
macro_rules! rfind {
    ($h:expr, $n:expr) => {{
        static F: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new($n));
        F.rfind($h)
    }};
}
pub(crate) use find;

pub mod access;
pub mod access_json;
pub mod formats;
pub mod fpm;
mod literal;
pub mod nginx_conf;
pub mod nginx_error;
pub mod php_error;
pub mod record;
pub mod values;
