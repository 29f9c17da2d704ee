//! Line and record boundaries in byte slices.
//!
//! Input: a byte slice (a mapped range, a positional read, a decoded gzip block). Output:
//! physical lines (without `\n` and a trailing `\r`) and record boundaries. Invariants:
//! every byte belongs to exactly one line; a missing final newline still yields the last
//! line; a record start is only ever found right after a `\n` (or at offset 0).

/// Physical lines of `bytes`: `\n` ends a line, a `\r` before it is dropped, and a last
/// line without a newline is still a line. An empty slice has no lines.
pub struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Lines { bytes, pos: 0 }
    }

    /// Byte offset (within the slice) where the next line starts.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.pos..];
        let (line, adv) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += adv;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// Count of physical lines (same rule as `Lines`).
pub fn count_lines(bytes: &[u8]) -> u64 {
    let n = memchr::memchr_iter(b'\n', bytes).count() as u64;
    n + u64::from(!bytes.is_empty() && bytes.last() != Some(&b'\n'))
}

/// The record-start rule of a kind: does `line` (without its newline and `\r`) start a
/// record, given the complete line before it when there is one (`None` at the start of what
/// is visible)? Records of one kind need only the line itself; records in envelopes also
/// look at the line before (a Docker piece without its newline continues into the next).
pub type StartRule<'r> = &'r (dyn Fn(Option<&[u8]>, &[u8]) -> bool + Sync);

fn no_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// First offset `p > 0` right after a `\n` whose line is a record start. The bytes before
/// the first `\n` are ignored: the slice may begin mid-line. `at_eof`: the slice ends where
/// the file ends, so its last line is whole and can be judged.
pub fn next_record_start(bytes: &[u8], at_eof: bool, is_start: StartRule) -> Option<usize> {
    let mut prev: Option<(usize, usize)> = None;
    for nl in memchr::memchr_iter(b'\n', bytes) {
        let p = nl + 1;
        if p >= bytes.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &bytes[p..]).map(|e| p + e).unwrap_or(bytes.len());
        if end == bytes.len() && end - p < 32 && !at_eof {
            // Too little of the line is visible to judge it.
            return None;
        }
        if is_start(prev.map(|(a, b)| no_cr(&bytes[a..b])), no_cr(&bytes[p..end])) {
            return Some(p);
        }
        prev = Some((p, end));
    }
    None
}

/// Last offset `0 < p <= len` where a block may be cut so that no record is split:
/// after any `\n` when records are single lines (`multiline == false`), else only before a
/// visible record start. `bytes` begins at a record boundary (its first line is whole).
pub fn last_record_start(bytes: &[u8], multiline: bool, is_start: StartRule) -> Option<usize> {
    if !multiline {
        return memchr::memrchr(b'\n', bytes).map(|i| i + 1);
    }
    let mut end = bytes.len();
    for nl in memchr::memrchr_iter(b'\n', bytes) {
        let p = nl + 1;
        if p < bytes.len() && p < end {
            let ps = memchr::memrchr(b'\n', &bytes[..nl]).map_or(0, |i| i + 1);
            if is_start(Some(no_cr(&bytes[ps..nl])), no_cr(&bytes[p..end])) {
                return Some(p);
            }
        }
        end = nl;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts_start(_: Option<&[u8]>, l: &[u8]) -> bool {
        l.first() == Some(&b'2')
    }

    #[test]
    fn lines_handle_crlf_and_missing_newline() {
        let v: Vec<&[u8]> = Lines::new(b"a\r\nb\n\nc").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(count_lines(b"a\r\nb\n\nc"), 4);
        assert_eq!(count_lines(b"a\n"), 1);
        assert_eq!(count_lines(b""), 0);
        assert_eq!(Lines::new(b"").count(), 0);
    }

    #[test]
    fn record_starts() {
        let b = b"2 first line that is long enough to judge\n  continuation line that is long enough\n2 next record that is long enough to judge\n";
        let p = next_record_start(b, false, &ts_start).unwrap();
        assert!(b[p..].starts_with(b"2 next"));
        assert_eq!(last_record_start(b, true, &ts_start), Some(p));
        assert_eq!(last_record_start(b, false, &ts_start), Some(b.len()));
        assert_eq!(last_record_start(b"no newline", false, &ts_start), None);
    }

    proptest! {
        /// Cutting at record starts and concatenating gives back the input, and line counts
        /// add up, whatever the cut positions.
        #[test]
        fn cuts_partition_the_input(lines in proptest::collection::vec("[0-9a-z ]{0,40}", 0..60), target in 1usize..200) {
            let text = lines.join("\n");
            let bytes = text.as_bytes();
            let mut pieces = Vec::new();
            let mut start = 0;
            while start < bytes.len() {
                let cut = (start + target).min(bytes.len());
                let next = if cut >= bytes.len() { bytes.len() } else {
                    next_record_start(&bytes[cut..], true, &ts_start).map(|p| cut + p).unwrap_or(bytes.len())
                };
                pieces.push(&bytes[start..next]);
                start = next;
            }
            prop_assert_eq!(pieces.concat(), bytes.to_vec());
            let total: u64 = pieces.iter().map(|p| count_lines(p)).sum();
            prop_assert_eq!(total, count_lines(bytes));
        }
    }
}
