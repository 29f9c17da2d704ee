//! The literals of an access `log_format` and the searches for them: where a variable's
//! value ends is where the literal after it starts (`access::AccessFormat::parse_into`).
//!
//! Input: a literal's bytes (once per format), then the rest of a line. Output: whether the
//! line starts with the literal (`Lit::starts`), where it first occurs (`find_lit`), or where
//! an `$upstream_*` list followed by it ends (`list_len`). Invariants: the answers are those of
//! `starts_with` and a naive search (property tests in `access_tests`); no allocation; no
//! panic on any bytes.

/// `s.starts_with(p)` for the short literals of a format, compared in line: the slice
/// comparison calls libc's memcmp, which cost 6% of a whole run (perf) on 1-4 byte literals.
#[inline(always)]
fn has_prefix(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && s.iter().zip(p).all(|(a, b)| a == b)
}

/// A literal of a format, with its first 8 bytes as a little-endian word and a mask of the
/// bytes it has: a prefix test is one load and a compare when 8 bytes of the line remain. The
/// byte-by-byte compare it replaces (`has_prefix` on every literal, inside every search and
/// between the items of every `$upstream_*` list) was a quarter of `parse_into`'s
/// instructions (callgrind, the bench's extended format).
#[derive(Debug, Clone)]
pub(crate) struct Lit {
    pub(crate) bytes: Box<[u8]>,
    word: u64,
    mask: u64,
    /// The first byte in each byte of a word (`find_lit`'s pattern).
    splat: u64,
}

impl Lit {
    pub(crate) fn new(b: &[u8]) -> Lit {
        let n = b.len().min(8);
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(&b[..n]);
        let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        let splat = u64::from_le_bytes([b.first().copied().unwrap_or(0); 8]);
        Lit { bytes: b.into(), word: u64::from_le_bytes(w), mask, splat }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The literal opens with a byte that ends a list item and is no separator (`"`, or the
    /// `\` of a JSON-escaped quote): `list_len` would stop at its first occurrence, which is
    /// where `find_lit` looks (the item-by-item walk was 9% of a plain-text scan, perf).
    pub(crate) fn ends_items(&self) -> bool {
        matches!(self.bytes.first(), Some(b'"' | b'\\'))
    }

    /// `s.starts_with(self)`.
    #[inline(always)]
    pub(crate) fn starts(&self, s: &[u8]) -> bool {
        match s.first_chunk::<8>() {
            Some(head) => {
                (u64::from_le_bytes(*head) ^ self.word) & self.mask == 0
                    && (self.bytes.len() <= 8 || s.get(8..self.bytes.len()) == Some(&self.bytes[8..]))
            }
            None => has_prefix(s, &self.bytes),
        }
    }
}

/// Where `lit` first occurs in `h`: its first byte found by `memchr`, then the whole literal
/// compared in place. A field runs a few to a hundred bytes to its literal; `memmem`'s vector
/// searcher paid its setup on each (5.5% of a noisy run's cycles, perf). Always inlined: a
/// call's saved registers and the first byte's pattern (now kept in the `Lit`) were a third
/// of its 82 instructions a search, 13 searches a line.
#[inline(always)]
pub(crate) fn find_lit(h: &[u8], lit: &Lit) -> Option<usize> {
    let first = *lit.bytes.first()?;
    // Most fields (a status, a size, a time, a client address) end within 16 bytes: those
    // bytes a word at a time, with no call (memchr's vector setup cost more than such a field:
    // 14% of a plain-text scan's samples were memchr's, perf).
    let ones = u64::from_le_bytes([1; 8]);
    let pattern = lit.splat;
    let mut i = 0;
    while i < 16 {
        let Some(w) = h.get(i..).and_then(|r| r.first_chunk::<8>()) else { break };
        let x = u64::from_le_bytes(*w) ^ pattern;
        // A high bit per byte of `x` that is zero (the byte equals `first`); bytes above a
        // zero can be marked too (a borrow), which the literal compare rejects.
        let mut hits = x.wrapping_sub(ones) & !x & (ones << 7);
        while hits != 0 {
            let at = i + (hits.trailing_zeros() / 8) as usize;
            if lit.starts(&h[at..]) {
                return Some(at);
            }
            hits &= hits - 1;
        }
        i += 8;
    }
    while let Some(j) = memchr::memchr(first, &h[i..]) {
        let at = i + j;
        if lit.starts(&h[at..]) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Length of an `$upstream_*` list at the start of `s` that is followed by `lit`:
/// items without spaces or commas, joined by `, ` or ` : `.
pub(crate) fn list_len(s: &[u8], lit: &Lit) -> Option<usize> {
    let mut i = 0;
    loop {
        // (A backslash ends an item too: in a JSON-escaped line the closing quote is `\"`.)
        let item = s[i..].iter().take_while(|&&c| c != b' ' && c != b',' && c != b'"' && c != b'\\').count();
        i += item;
        match (s.get(i), s.get(i + 1), s.get(i + 2)) {
            (Some(b','), Some(b' '), _) => i += 2,
            (Some(b' '), Some(b':'), Some(b' ')) => i += 3,
            _ => return lit.starts(&s[i..]).then_some(i),
        }
    }
}
