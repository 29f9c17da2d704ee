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

/// The start of the last occurrence of `needle` in `h`: the places of its byte `needle[k]`
/// found backwards with `memrchr` (vector code), each checked for the whole needle. memchr's
/// reverse searcher (`FinderRev`) has no vector prefilter: the error-log parser's reverse
/// searches took 569 M instructions for the 304 k entries of the noisy 2 GiB corpus (about 470
/// a search, callgrind), these about 300. `k` names a byte of the needle that is rare in the
/// text searched (a comma, a parenthesis), so few places are checked. Overlapping occurrences
/// are found like any other.
#[inline]
pub(crate) fn rfind_at(h: &[u8], needle: &[u8], k: usize) -> Option<usize> {
    rfind_iter_at(h, needle, k).next()
}

/// Every occurrence of `needle` in `h`, last first (see `rfind_at`).
pub(crate) fn rfind_iter_at<'a>(h: &'a [u8], needle: &'a [u8], k: usize) -> impl Iterator<Item = usize> + 'a {
    debug_assert!(k < needle.len());
    memchr::memrchr_iter(needle[k], h).filter_map(move |p| {
        let s = p.checked_sub(k)?;
        h[s..].starts_with(needle).then_some(s)
    })
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

#[cfg(test)]
mod tests {
    use super::{rfind_at, rfind_iter_at};
    use memchr::memmem::FinderRev;
    use proptest::prelude::*;

    /// Every occurrence of `needle` in `h`, last first, the slow way.
    fn all_rev(h: &[u8], needle: &[u8]) -> Vec<usize> {
        (0..h.len()).rev().filter(|&s| h[s..].starts_with(needle)).collect()
    }

    proptest! {
        /// `rfind_at` finds what memchr's reverse searcher finds, and `rfind_iter_at` every
        /// occurrence, overlapping ones included, whichever byte of the needle anchors it:
        /// haystacks of a few bytes, so needles occur often and overlap (` while while `).
        #[test]
        fn reverse_search_agrees(h in proptest::collection::vec(prop::sample::select(b" wchile,(:".to_vec()), 0..80),
                                 needle in prop::sample::select(vec![&b" while "[..], b", client: ", b" (", b"ww", b"w w", b",", b"ee"])) {
            let want = all_rev(&h, needle);
            for k in 0..needle.len() {
                prop_assert_eq!(rfind_at(&h, needle, k), FinderRev::new(needle).rfind(&h));
                prop_assert_eq!(rfind_iter_at(&h, needle, k).collect::<Vec<_>>(), want.clone());
            }
        }
    }

    #[test]
    fn reverse_search_finds_the_last_of_overlapping_occurrences() {
        let h = b"a while while b";
        assert_eq!(rfind_at(h, b" while ", 1), Some(7));
        assert_eq!(rfind_iter_at(h, b" while ", 1).collect::<Vec<_>>(), vec![7, 1]);
        assert_eq!(rfind_at(b"", b" (", 1), None);
        assert_eq!(rfind_at(b"(", b" (", 1), None);
    }
}
