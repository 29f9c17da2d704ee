//! Readers of access-log field values: status codes, seconds, and nginx's `$upstream_*`
//! lists (one item per attempt).
//!
//! Input: a field's bytes as `access::AccessFormat` split them. Output: numbers and list
//! items, borrowed. Invariants: no allocation (but `list_statuses`' vector, built for failing
//! requests only); no panic on any bytes; `None` for a value that is not the number asked.

/// A decimal of at most `max` digits (at most 19: no overflow of u64), nothing else.
#[inline]
pub(crate) fn digits(b: &[u8], max: usize) -> Option<u64> {
    // A status, the common case (two a line): three digits with no loop (the loop was 44
    // instructions a line, callgrind, the plain shop log).
    if let [x, y, z] = *b {
        let [x, y, z] = [x, y, z].map(|c| c.wrapping_sub(b'0'));
        return (x <= 9 && y <= 9 && z <= 9 && max >= 3).then_some(x as u64 * 100 + y as u64 * 10 + z as u64);
    }
    if b.is_empty() || b.len() > max.min(19) {
        return None;
    }
    let mut v = 0u64;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    Some(v)
}

pub fn parse_u16(b: &[u8]) -> Option<u16> {
    u16::try_from(digits(b, 5)?).ok()
}

/// Seconds with up to three decimals (`0.123`), as milliseconds. `-` is `None`.
///
/// One pass over the bytes: the value is a few bytes long, and finding the dot with `memchr`
/// first cost a call per value (three per line of the bench's format). nginx's own shape
/// below ten seconds, `0.349` (`$request_time`, `$upstream_*_time`), is read in line with no
/// loop; any other shape by a call (as one function the compiler called it for every value:
/// 36 instructions a value, 2.6% of a plain-text run, callgrind).
#[inline(always)]
pub fn parse_secs_ms(b: &[u8]) -> Option<u32> {
    // Any non-digit is `None`, as in the loops of `secs_ms_any`.
    if let [a, b'.', x, y, z] = *b {
        let [a, x, y, z] = [a, x, y, z].map(|c| c.wrapping_sub(b'0') as u32);
        return (a <= 9 && x <= 9 && y <= 9 && z <= 9).then_some(a * 1000 + x * 100 + y * 10 + z);
    }
    secs_ms_any(b)
}

/// `parse_secs_ms` of any other shape.
#[inline(never)]
fn secs_ms_any(b: &[u8]) -> Option<u32> {
    let mut it = b.iter();
    let (mut ms, mut digits, mut dot) = (0u32, 0, false);
    for &c in it.by_ref() {
        if c == b'.' {
            dot = true;
            break;
        }
        let d = c.wrapping_sub(b'0');
        // At most 6 integer digits (11 days): the result stays within u32 milliseconds. A
        // 7-digit value overflowed the multiplication below (found by the `access` fuzz target).
        if d > 9 || digits == 6 {
            return None;
        }
        ms = ms * 10 + d as u32;
        digits += 1;
    }
    if digits == 0 {
        return None;
    }
    let (mut f, mut decimals) = (0u32, 0);
    if dot {
        for &c in it {
            let d = c.wrapping_sub(b'0');
            if d > 9 || decimals == 3 {
                return None;
            }
            f = f * 10 + d as u32;
            decimals += 1;
        }
    }
    for _ in decimals..3 {
        f *= 10;
    }
    Some(ms * 1000 + f)
}

/// Items of an `$upstream_*` list in order (`, ` and ` : ` both separate attempts).
pub fn list_items(b: &[u8]) -> ListItems<'_> {
    ListItems { rest: b }
}

/// `list_items`' iterator: the pieces between `,` and ` ` that are neither empty nor `:`.
/// Items never contain spaces or commas (`unix:/path` contains ':', so split on neither). Every
/// access line's `$upstream_addr`, `$upstream_status` and times are read through it, mostly a
/// single item: `slice::split` looked at a byte at a time (about 250 instructions a line of the
/// bench's format, callgrind), the separator search here looks at 8.
pub struct ListItems<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a [u8];

    // Always inlined: a call was 40 instructions an item, most of them the call's.
    #[inline(always)]
    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let end = separator(self.rest).unwrap_or(self.rest.len());
            let item = &self.rest[..end];
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            if !item.is_empty() && item != b":" {
                return Some(item);
            }
        }
        None
    }
}

/// The first `,` or ` ` in `b`: 8 bytes at a time (a high bit per byte equal to either; the
/// lowest is exact, bits above it may be borrows), the last few as the word of `b`'s last 8
/// bytes (or two of 4 below 8 bytes) without the bytes already looked at: a byte at a time,
/// those last bytes were 90 instructions a line (a peer, a status and a time each end in
/// some), callgrind, the plain shop log.
#[inline(always)]
fn separator(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let hits = |x: u64| {
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        zero(x ^ (ONES * u64::from(b','))) | zero(x ^ (ONES * u64::from(b' ')))
    };
    let n = b.len();
    let at = |base: usize, h: u64| base + (h.trailing_zeros() / 8) as usize;
    if n >= 8 {
        let mut words = b.chunks_exact(8);
        let mut base = 0;
        for w in &mut words {
            let h = hits(u64::from_le_bytes(w.try_into().unwrap_or_default()));
            if h != 0 {
                return Some(at(base, h));
            }
            base += 8;
        }
        let rem = n - base;
        if rem == 0 {
            return None;
        }
        // The last 8 bytes, the first `8 - rem` of them already searched (no separator
        // there, so no borrow into the rest either).
        let last = u64::from_le_bytes(b[n - 8..].try_into().unwrap_or_default());
        let h = hits(last) & (u64::MAX << (8 * (8 - rem)));
        return (h != 0).then(|| at(n - 8, h));
    }
    if n >= 4 {
        // Two overlapping words of 4 (the high half zero: no byte there is a separator).
        let word = |i: usize| u64::from(u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default()));
        let h = hits(word(0)) & 0xFFFF_FFFF;
        if h != 0 {
            return Some(at(0, h));
        }
        let h = hits(word(n - 4)) & 0xFFFF_FFFF;
        return (h != 0).then(|| at(n - 4, h));
    }
    b.iter().position(|&c| c == b',' || c == b' ')
}

/// `b` if it is a list of one item (`list_items` would yield `b` itself): an access line's
/// `$upstream_*` values almost always are (one attempt), read without the iterator.
#[inline(always)]
pub fn single(b: &[u8]) -> Option<&[u8]> {
    (separator(b).is_none() && !b.is_empty() && b != b":").then_some(b)
}

/// Sum of an `$upstream_*_time` list in milliseconds (what the request spent upstream).
pub fn list_time_total(b: &[u8]) -> Option<u32> {
    let mut total = None;
    for it in list_items(b) {
        if let Some(v) = parse_secs_ms(it) {
            total = Some(total.unwrap_or(0u32).saturating_add(v));
        }
    }
    total
}

/// Statuses of an `$upstream_status` list (`-` as 0).
pub fn list_statuses(b: &[u8]) -> Vec<u16> {
    list_items(b).map(|s| parse_u16(s).unwrap_or(0)).collect()
}

/// Does any attempt in an `$upstream_status` list have status >= 500?
#[inline]
pub fn any_attempt_failed(b: &[u8]) -> bool {
    // Fast path for the common single 3-digit value.
    if b.len() == 3 {
        return b[0] == b'5';
    }
    list_items(b).any(|s| s.len() == 3 && s[0] == b'5')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(b: &[u8]) -> Vec<&[u8]> {
        b.split(|&c| c == b',' || c == b' ').filter(|s| !s.is_empty() && *s != b":").collect()
    }

    #[test]
    fn list_items_of_nginx_lists() {
        fn items(b: &[u8]) -> Vec<&[u8]> {
            list_items(b).collect()
        }
        assert_eq!(items(b"unix:/run/php/php8.2-fpm.sock"), [&b"unix:/run/php/php8.2-fpm.sock"[..]]);
        assert_eq!(items(b"10.0.0.1:80, 10.0.0.2:80 : backend"), [&b"10.0.0.1:80"[..], b"10.0.0.2:80", b"backend"]);
        assert_eq!(items(b"502, 504 : 200"), [&b"502"[..], b"504", b"200"]);
        assert_eq!(items(b"0.001,  ,-"), [&b"0.001"[..], b"-"]);
        assert!(items(b"").is_empty() && items(b" , : ").is_empty());
    }

    /// `digits` is `str::parse` of ASCII digits within `max` (and 19) digits: every string of
    /// up to 5 bytes over digits and their neighbours `/` and `:` (3 bytes: the status fast path),
    /// for every `max` from 0 to 6.
    #[test]
    fn digits_parse_as_decimal_text_does() {
        let alphabet = b"0159/:";
        let mut n = 0;
        for len in 0..=5u32 {
            for code in 0..alphabet.len().pow(len) {
                let b: Vec<u8> = (0..len).map(|k| alphabet[code / alphabet.len().pow(k) % alphabet.len()]).collect();
                for max in 0..=6 {
                    let oracle = (!b.is_empty() && b.len() <= max && b.iter().all(u8::is_ascii_digit))
                        .then(|| std::str::from_utf8(&b).unwrap().parse::<u64>().unwrap());
                    assert_eq!(digits(&b, max), oracle, "{:?} max {max}", String::from_utf8_lossy(&b));
                    n += 1;
                }
            }
        }
        assert_eq!(n, 7 * (1 + 6 + 36 + 216 + 1296 + 7776));
    }

    proptest! {
        /// The same items as splitting a byte at a time, on lists of any length and shape.
        #[test]
        fn list_items_split_as_slice_split(b in proptest::collection::vec(prop_oneof![
            Just(b','), Just(b' '), Just(b':'), Just(b'5'), Just(b'.'), Just(0x80u8), Just(0xacu8), Just(0xa0u8)
        ], 0..40)) {
            prop_assert_eq!(list_items(&b).collect::<Vec<_>>(), reference(&b));
            // `single` is the one-item case of the same split: the value itself, or nothing.
            let items = reference(&b);
            prop_assert_eq!(single(&b), (items.len() == 1 && items[0] == &b[..]).then_some(&b[..]));
        }

        /// The first separator of items of any length (mostly without one, so the word and
        /// tail searches are all reached), high-bit bytes beside them.
        #[test]
        fn separator_is_the_first_comma_or_space(b in proptest::collection::vec(prop_oneof![
            8 => Just(b'a'), 1 => Just(b','), 1 => Just(b' '), 1 => Just(0xacu8), 1 => Just(0xa0u8), 1 => Just(0u8)
        ], 0..40)) {
            prop_assert_eq!(separator(&b), b.iter().position(|&c| c == b',' || c == b' '));
        }
    }
}
