//! A JSON object scanner for log records: Docker json-file and journal export envelopes,
//! JSON access logs (`log_format ... escape=json`).
//!
//! Input: the bytes of one line holding one JSON object. Output: its members, one call per
//! member, with the key and the value as raw borrowed slices (strings without their quotes,
//! still escaped, with a flag saying whether they contain escapes), and `unescape_into` to
//! decode a string into a reused buffer. Invariants: no allocation; no panic on any bytes;
//! a line that is not one well-formed object is rejected (`false`), never half-read; nesting
//! is bounded (`MAX_DEPTH`).
//!
//! Why not serde_json: a record is scanned once per line on the hot path of a wrapped log, and
//! only a handful of keys matter; serde's map visitors allocate per key or per escaped value,
//! and a Docker record always holds escapes (every `log` ends in `\n`). Strings are decoded
//! only when read, into one buffer per reader.

/// Objects nested deeper than this are rejected.
pub const MAX_DEPTH: usize = 16;

/// A member's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string, without its quotes; `escaped` when it holds a backslash.
    Str { raw: &'a [u8], escaped: bool },
    /// A number, `true`, `false` or `null`, as written.
    Scalar(&'a [u8]),
    /// A nested object, braces included (scan it with `members`).
    Object(&'a [u8]),
    /// An array, brackets included.
    Array(&'a [u8]),
}

impl<'a> Value<'a> {
    /// The value's text: a string's raw bytes (escapes undone when `buf` is given and needed)
    /// or a scalar as written; `None` for `null`, objects and arrays.
    pub fn text<'b>(&self, buf: &'b mut Vec<u8>) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        match *self {
            Value::Str { raw, escaped: false } => Some(raw),
            Value::Str { raw, escaped: true } => {
                buf.clear();
                unescape_into(raw, buf).then_some(&buf[..])
            }
            Value::Scalar(b"null") => None,
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// End of the string whose opening quote is at `i - 1`: the index of its closing quote, and
/// whether it holds escapes.
#[inline]
fn string_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        let p = i + memchr::memchr2(b'"', b'\\', &b[i..])?;
        if b[p] == b'"' {
            return Some((p, escaped));
        }
        escaped = true;
        // A backslash escapes the next byte (for `\uXXXX` the rest is plain hex digits).
        i = p + 2;
        if i > b.len() {
            return None;
        }
    }
}

/// End (exclusive) of the value starting at `i`.
fn value_end(b: &[u8], i: usize, depth: usize) -> Option<(usize, Value<'_>)> {
    match *b.get(i)? {
        b'"' => {
            let (e, escaped) = string_end(b, i + 1)?;
            Some((e + 1, Value::Str { raw: &b[i + 1..e], escaped }))
        }
        b'{' => {
            let e = container_end(b, i, depth + 1)?;
            Some((e, Value::Object(&b[i..e])))
        }
        b'[' => {
            let e = container_end(b, i, depth + 1)?;
            Some((e, Value::Array(&b[i..e])))
        }
        _ => {
            let n = b[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.')).count();
            (n > 0).then(|| (i + n, Value::Scalar(&b[i..i + n])))
        }
    }
}

/// End (exclusive) of the object or array opening at `i`, checking its syntax.
fn container_end(b: &[u8], i: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (open, close) = if b[i] == b'{' { (b'{', b'}') } else { (b'[', b']') };
    debug_assert_eq!(b[i], open);
    let mut p = skip_ws(b, i + 1);
    if b.get(p) == Some(&close) {
        return Some(p + 1);
    }
    loop {
        if open == b'{' {
            if b.get(p) != Some(&b'"') {
                return None;
            }
            let (e, _) = string_end(b, p + 1)?;
            p = skip_ws(b, e + 1);
            if b.get(p) != Some(&b':') {
                return None;
            }
            p = skip_ws(b, p + 1);
        }
        let (e, _) = value_end(b, p, depth)?;
        p = skip_ws(b, e);
        match b.get(p)? {
            b',' => p = skip_ws(b, p + 1),
            c if *c == close => return Some(p + 1),
            _ => return None,
        }
    }
}

/// Call `f(key, value)` for each member of the object `obj` (the whole line, surrounding
/// white space allowed), keys raw (escapes left in). False when `obj` is not exactly one
/// well-formed object; `f` may then have seen some members.
pub fn members<'a>(obj: &'a [u8], mut f: impl FnMut(&'a [u8], Value<'a>)) -> bool {
    let start = skip_ws(obj, 0);
    if obj.get(start) != Some(&b'{') {
        return false;
    }
    let mut p = skip_ws(obj, start + 1);
    if obj.get(p) == Some(&b'}') {
        return skip_ws(obj, p + 1) == obj.len();
    }
    loop {
        if obj.get(p) != Some(&b'"') {
            return false;
        }
        let Some((ke, _)) = string_end(obj, p + 1) else { return false };
        let key = &obj[p + 1..ke];
        p = skip_ws(obj, ke + 1);
        if obj.get(p) != Some(&b':') {
            return false;
        }
        p = skip_ws(obj, p + 1);
        let Some((ve, v)) = value_end(obj, p, 1) else { return false };
        f(key, v);
        p = skip_ws(obj, ve);
        match obj.get(p) {
            Some(b',') => p = skip_ws(obj, p + 1),
            Some(b'}') => return skip_ws(obj, p + 1) == obj.len(),
            _ => return false,
        }
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    let mut v = 0u32;
    for &c in &b[..4] {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Decode the escapes of a raw JSON string (without quotes) onto `out`. Invalid escapes and
/// lone surrogates become U+FFFD (a log line is shown, not rejected); false only for a
/// backslash at the very end.
pub fn unescape_into(raw: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    while i < raw.len() {
        let Some(p) = memchr::memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            return true;
        };
        out.extend_from_slice(&raw[i..i + p]);
        i += p + 1;
        let Some(&c) = raw.get(i) else { return false };
        i += 1;
        let simple = match c {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'b' => Some(8),
            b'f' => Some(12),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            continue;
        }
        let mut ch = None;
        if c == b'u' {
            if let Some(hi) = hex4(&raw[i..]) {
                i += 4;
                ch = match hi {
                    0xD800..=0xDBFF => match (raw.get(i..i + 2), hex4(raw.get(i + 2..).unwrap_or(&[]))) {
                        (Some(b"\\u"), Some(lo @ 0xDC00..=0xDFFF)) => {
                            i += 6;
                            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                        }
                        _ => None,
                    },
                    _ => char::from_u32(hi),
                };
            }
        }
        let ch = ch.unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut tmp = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(obj: &[u8]) -> Option<Vec<(String, String)>> {
        let mut v = Vec::new();
        let ok = members(obj, |k, val| {
            let mut buf = Vec::new();
            let t = match val {
                Value::Object(o) | Value::Array(o) => o.to_vec(),
                _ => val.text(&mut buf).map(|t| t.to_vec()).unwrap_or_else(|| b"<null>".to_vec()),
            };
            v.push((String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(&t).into_owned()));
        });
        ok.then_some(v)
    }

    #[test]
    fn docker_records_and_escapes() {
        let line = br#"{"log":"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] \"GET /a?x=\u003cb\u003e HTTP/1.1\" 502\n","stream":"stdout","time":"2026-11-22T03:14:42.1Z"}"#;
        let m = collect(line).unwrap();
        assert_eq!(m[0].0, "log");
        assert_eq!(m[0].1, "10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] \"GET /a?x=<b> HTTP/1.1\" 502\n");
        assert_eq!(m[1], ("stream".into(), "stdout".into()));
        assert_eq!(m[2].1, "2026-11-22T03:14:42.1Z");
    }

    #[test]
    fn nested_numbers_literals_and_rejects() {
        let m = collect(br#" { "a" : 1.5e3 , "b":null,"c":{"d":[1,{"e":"f"}]},"t":true,"u":"\ud83d\ude00 \ud800x"} "#)
            .unwrap();
        assert_eq!(m[0], ("a".into(), "1.5e3".into()));
        assert_eq!(m[1].1, "<null>");
        assert_eq!(m[2].1, r#"{"d":[1,{"e":"f"}]}"#);
        assert_eq!(m[3].1, "true");
        assert_eq!(m[4].1, "😀 \u{FFFD}x");
        assert_eq!(collect(b"{}"), Some(vec![]));
        for bad in [
            &b""[..],
            b"[1]",
            b"{\"a\":1",
            b"{\"a\" 1}",
            b"{\"a\":1} x",
            b"{\"a\":\"x}",
            b"{a:1}",
            b"{\"a\":1,}",
            b"{\"a\":}",
        ] {
            assert_eq!(collect(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(collect(deep.as_bytes()), None);
        let mut out = Vec::new();
        assert!(!unescape_into(b"abc\\", &mut out));
        out.clear();
        assert!(unescape_into(b"\\q\\u12", &mut out));
        assert_eq!(String::from_utf8(out).unwrap(), "\u{FFFD}\u{FFFD}12");
    }
}
