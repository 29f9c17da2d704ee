//! Readers of access-log field values: status codes, seconds, and nginx's `$upstream_*`
//! lists (one item per attempt).
//!
//! Input: a field's bytes as `access::AccessFormat` split them. Output: numbers and list
//! items, borrowed. Invariants: no allocation (but `list_statuses`' vector, built for failing
//! requests only); no panic on any bytes; `None` for a value that is not the number asked.

/// A decimal of at most `max` digits (at most 19: no overflow of u64), nothing else.
#[inline]
pub(crate) fn digits(b: &[u8], max: usize) -> Option<u64> {
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
/// first cost a call per value (three per line of the bench's format).
#[inline]
pub fn parse_secs_ms(b: &[u8]) -> Option<u32> {
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
pub fn list_items(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    // Items never contain spaces or commas (`unix:/path` contains ':', so split on neither).
    b.split(|&c| c == b',' || c == b' ').filter(|s| !s.is_empty() && *s != b":")
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
