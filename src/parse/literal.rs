//! The literals of an access `log_format` and the searches for them: where a variable's
//! value ends is where the literal after it starts (`access::AccessFormat::parse_into`).
//!
//! Input: a literal's bytes (once per format), then the rest of a line. Output: whether the
//! line starts with the literal (`Lit::starts`), where it first occurs (`find_at`), or where
//! an `$upstream_*` list followed by it ends (`list_len`). Invariants: the answers are those of
//! `starts_with` and a naive search (property tests in `access_tests`); no allocation; no
//! panic on any bytes.

use wide::u8x16;

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
    /// The first byte in each lane of a vector (`find_at`'s pattern).
    vsplat: u8x16,
}

impl Lit {
    pub(crate) fn new(b: &[u8]) -> Lit {
        let n = b.len().min(8);
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(&b[..n]);
        let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        let vsplat = u8x16::splat(b.first().copied().unwrap_or(0));
        Lit { bytes: b.into(), word: u64::from_le_bytes(w), mask, vsplat }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The literal opens with a byte that ends a list item and is no separator (`"`, or the
    /// `\` of a JSON-escaped quote): `list_len` would stop at its first occurrence, which is
    /// where `find_at` looks (the item-by-item walk was 9% of a plain-text scan, perf).
    pub(crate) fn ends_items(&self) -> bool {
        matches!(self.bytes.first(), Some(b'"' | b'\\'))
    }

    /// Bit `k` set where `block[k]` (16 bytes) is the literal's first byte.
    #[inline(always)]
    fn hits(&self, block: &[u8]) -> u32 {
        u8x16::new(block.try_into().expect("16 bytes")).simd_eq(self.vsplat).to_bitmask()
    }

    /// The first position `base + k`, for the bits `k` set in `m`, where `h` has the literal.
    #[inline(always)]
    fn first_start(&self, h: &[u8], base: usize, mut m: u32) -> Option<usize> {
        while m != 0 {
            let at = base + m.trailing_zeros() as usize;
            if self.starts(&h[at..]) {
                return Some(at);
            }
            m &= m - 1;
        }
        None
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

/// Where `lit` first occurs in `h`: `find_at(h, 0, lit)` (the tests' form of the search).
#[cfg(test)]
pub(crate) fn find_lit(h: &[u8], lit: &Lit) -> Option<usize> {
    find_at(h, 0, lit)
}

/// Where `lit` first occurs in `h` at or after `from` (a position in `h`, as is the answer):
/// its first byte found 16 bytes at a time by a vector compare (SSE2 on x86-64, through
/// `wide`: no `unsafe` here), then the whole literal compared in place. A field runs a few
/// to a hundred bytes to its literal: `memchr` paid its call and vector setup on each long one
/// (a request, a referrer, a user agent: 29% of `parse_into`'s instructions, callgrind, 100 MB
/// of the bench's shop log), and a word-at-a-time loop over the first 16 bytes cost 10
/// instructions a word. Always inlined: a call's saved registers were a third of the search's
/// instructions. Positions in the whole line rather than a slice of its rest: `parse_into`
/// re-sliced the rest at every field (bounds checks and a pointer and length each). (Masks of
/// every delimiter byte over the whole line, 64 bytes at a time, computed once per line, were
/// tried and cost more than the searches they replaced: 80 instructions a block, 1.07 -> 1.17
/// G on the same 100 MB; tried again with each block's mask computed when a search first
/// reached it, to shorten the chain of dependent loads from field to field: 32% more of the
/// parser's instructions, and no faster.)
#[inline(always)]
pub(crate) fn find_at(h: &[u8], from: usize, lit: &Lit) -> Option<usize> {
    let mut i = from;
    while let Some(c) = h.get(i..i + 16) {
        if let Some(at) = lit.first_start(h, i, lit.hits(c)) {
            return Some(at);
        }
        i += 16;
    }
    if i >= h.len() {
        return None;
    }
    if h.len() - from >= 16 {
        // The last bytes: the last 16 of `h`, without those already searched (which hold no
        // start of the literal: only to spare their compares again).
        let base = h.len() - 16;
        return lit.first_start(h, base, lit.hits(&h[base..]) & (u32::MAX << (i - base)));
    }
    // Under 16 bytes from `from` (the end of a line).
    let first = *lit.bytes.first()?;
    (from..h.len()).find(|&at| h[at] == first && lit.starts(&h[at..]))
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
