//! Tests of the access-log parser (`access.rs`).
use super::*;
use crate::parse::literal::find_lit;

fn s(b: Option<&[u8]>) -> Option<&str> {
    b.map(|b| std::str::from_utf8(b).unwrap())
}

/// A line as a Docker json-file record's `log` holds it (JSON-escaped, no newline).
fn json_escape(line: &[u8]) -> Vec<u8> {
    let mut e = Vec::new();
    for &c in line {
        match c {
            b'"' => e.extend_from_slice(b"\\\""),
            b'\\' => e.extend_from_slice(b"\\\\"),
            b'\t' => e.extend_from_slice(b"\\t"),
            0x01 => e.extend_from_slice(b"\\u0001"),
            c => e.push(c),
        }
    }
    e
}

#[test]
fn escaped_lines_split_like_their_decoded_form() {
    let fmt = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time ua="$upstream_addr" us="$upstream_status""#;
    let f = AccessFormat::compile("x", fmt).unwrap();
    let e = f.json_escaped().unwrap();
    for line in [
        &br#"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] "GET /x?a=1 HTTP/1.1" 502 157 "-" "curl/8" rt=0.001 ua="127.0.0.1:9000, 127.0.0.1:9001" us="502, 200""#[..],
        br#"10.0.0.1 - bob [22/Nov/2026:04:14:42 +0100] "GET /a\x22b HTTP/1.1" 200 5 "https://x/?q=\\" "Mozilla \x22quoted\x22" rt=0.100 ua="unix:/run/php.sock" us="200""#,
        b"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] \"GET /tab\there HTTP/1.1\" 200 5 \"-\" \"ua\x01\" rt=0.1 ua=\"-\" us=\"-\" extra=1",
        br#"10.0.0.1 - - [22/Nov/2026:04:14:42 +0100] "GET / HTTP/1.1" 200 5 "-" "a "quoted" agent" rt=0.1 ua="-" us="-""#,
        br#"not an access line at all "#,
    ] {
        let want = f.parse(line);
        let raw = json_escape(line);
        let mut got = AccessLine::default();
        let mut scratch = Vec::new();
        let ok = e.parse_into(&raw, &mut got) && e.decode_escapes(&raw, &mut scratch, &mut got);
        assert_eq!(ok, want.is_some(), "{}", String::from_utf8_lossy(line));
        if let Some(w) = want {
            assert_eq!((got.vals, got.trailing), (w.vals, w.trailing), "{}", String::from_utf8_lossy(line));
        }
    }
}

#[test]
fn combined() {
    let f = AccessFormat::compile("combined", COMBINED).unwrap();
    let l = f
        .parse(br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=1 HTTP/1.0" 502 2326 "http://x/" "Mozilla/4.08 [en] (Win98; I ;Nav)""#)
        .unwrap();
    assert_eq!(l.status(), Some(502));
    assert_eq!(s(l.get(Var::RemoteAddr)), Some("127.0.0.1"));
    assert_eq!(s(l.get(Var::TimeLocal)), Some("10/Oct/2000:13:55:36 -0700"));
    assert_eq!(s(l.get(Var::HttpUserAgent)), Some("Mozilla/4.08 [en] (Win98; I ;Nav)"));
    let (m, u) = l.request_parts();
    assert_eq!((s(m), s(u)), (Some("GET"), Some("/apache_pb.gif?a=1")));
    assert!(f.parse(b"garbage").is_none());
    let extra = f.parse(br#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1 "-" "x" extra"#);
    assert!(extra.unwrap().trailing);
    assert!(f.parse(br#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1 "-" "x"junk"#).is_none());
}

#[test]
fn upstream_lists_followed_by_space() {
    let f = AccessFormat::compile(
        "u",
        r#"$remote_addr [$time_local] "$request" $status $upstream_addr $upstream_status $upstream_response_time $request_time"#,
    )
    .unwrap();
    let l = f
        .parse(br#"10.0.0.9 [22/Nov/2026:03:41:07 +0100] "GET /x HTTP/1.1" 200 10.0.0.1:9000, 10.0.0.2:9000 : 10.0.0.3:9000 502, 504 : 200 0.001, 1.000 : 0.020 1.030"#)
        .unwrap();
    assert_eq!(s(l.get(Var::UpstreamAddr)), Some("10.0.0.1:9000, 10.0.0.2:9000 : 10.0.0.3:9000"));
    assert_eq!(list_statuses(l.get(Var::UpstreamStatus).unwrap()), vec![502, 504, 200]);
    assert_eq!(list_time_total(l.get(Var::UpstreamResponseTime).unwrap()), Some(1021));
    assert_eq!(parse_secs_ms(l.get(Var::RequestTime).unwrap()), Some(1030));
    assert!(any_attempt_failed(l.get(Var::UpstreamStatus).unwrap()));
    assert!(!any_attempt_failed(b"200"));
    assert!(any_attempt_failed(b"504"));
}

#[test]
fn quoted_key_value_format() {
    let f = AccessFormat::compile(
        "kv",
        r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" host=$host rt=$request_time uaddr="$upstream_addr" ustatus="$upstream_status" urt="$upstream_response_time""#,
    )
    .unwrap();
    let l = f
        .parse(br#"127.0.0.1 - - [22/Nov/2026:03:41:07 +0100] "GET /slow.php?rid=a-1 HTTP/1.1" 504 160 "-" "curl/8" host=api.test rt=2.001 uaddr="unix:/tmp/x.sock" ustatus="504" urt="2.000""#)
        .unwrap();
    assert_eq!(s(l.host()), Some("api.test"));
    assert_eq!(s(l.get(Var::UpstreamAddr)), Some("unix:/tmp/x.sock"));
    let d = f
        .parse(br#"127.0.0.1 - - [22/Nov/2026:03:41:07 +0100] "GET / HTTP/1.1" 404 0 "-" "-" host=a rt=0.000 uaddr="-" ustatus="-" urt="-""#)
        .unwrap();
    assert_eq!(d.get(Var::UpstreamStatus), None);
}

#[test]
fn compile_errors() {
    assert!(matches!(AccessFormat::compile("x", "$status$request_time"), Err(FormatError::Adjacent { .. })));
    assert!(matches!(AccessFormat::compile("x", "$status [x]"), Err(FormatError::NoTime(_))));
    assert!(matches!(AccessFormat::compile("x", "no vars"), Err(FormatError::NoVariables(_))));
    let f = AccessFormat::compile("x", "${msec} ${status} $$x").unwrap();
    assert!(f.has(Var::Msec));
    assert!(f.parse(b"1.000 200 $$x").is_some());
}

#[test]
fn numbers() {
    assert_eq!(parse_secs_ms(b"0.5"), Some(500));
    assert_eq!(parse_secs_ms(b"12"), Some(12_000));
    assert_eq!(parse_secs_ms(b"-"), None);
    assert_eq!(parse_secs_ms(b"1.2345"), None);
    assert_eq!(parse_u16(b"99999"), None);
    assert_eq!(parse_u16(b"499"), Some(499));
}

#[test]
fn huge_times_do_not_overflow() {
    // Regression: the `access` fuzz target found `ms * 1000` overflowing on 7-digit seconds.
    assert_eq!(parse_secs_ms(b"9999999.999"), None);
    assert_eq!(parse_secs_ms(b"999999.999"), Some(999_999_999));
    assert_eq!(list_time_total(b"999999.999, 999999.999, 999999.999, 999999.999, 999999.999"), Some(u32::MAX));
}

/// A literal's first byte inside a field is not the literal: the search goes on past it.
#[test]
fn find_lit_skips_partial_matches() {
    let f = |h: &[u8], l: &[u8]| find_lit(h, &Lit::new(l));
    assert_eq!(f(b"GET /a\"b HTTP/1.1\" 200", b"\" "), Some(17));
    assert_eq!(f(b"x\"", b"\" "), None);
    assert_eq!(f(b"", b" - "), None);
    assert_eq!(f(b"1.2.3.4 - -", b" - "), Some(7));
    assert_eq!(f(b"  -", b" - "), None);
    // Literals longer than a word, and lines shorter than one, around the 8-byte boundary.
    assert_eq!(f(b"0.004\" uht=\"0.004\"", b"\" uht=\""), Some(5));
    assert_eq!(f(b"0.004\" uht=\"0", b"\" uht=\"0.005"), None);
    assert_eq!(f(b"12345678\" upstream_x=\"", b"\" upstream_x=\""), Some(8));
    assert_eq!(f(b"12345678\" upstream_x=", b"\" upstream_x=\""), None);
}

/// `Lit::starts` is `starts_with` for every literal length from 0 to 12 against every line
/// length from 0 to 12, matching and differing at each position.
#[test]
fn literal_prefix_test_is_starts_with() {
    let base = b"abcdefghijklmnop";
    for ln in 0..=12 {
        let lit = Lit::new(&base[..ln]);
        for sn in 0..=12 {
            for flip in 0..=sn {
                let mut s = base[..sn].to_vec();
                if flip < sn {
                    s[flip] ^= 0x20;
                }
                assert_eq!(lit.starts(&s), s.starts_with(&base[..ln]), "lit {ln} line {sn} flip {flip}");
            }
        }
    }
}

/// `find_lit` is the first occurrence (a naive search), and `find_at` the first at or after a
/// position, across their 16-byte blocks, the last block read overlapping the ones before, and
/// haystacks (or rests) under one block: haystacks of every
/// length to 80 over a small alphabet with the literal's first byte, the bytes next to it and
/// bytes 0x00/0x01/0x80/0xff. Mutation-checked: the last block's bits read as offsets from
/// where the search stopped instead of from the block's start fails it.
#[test]
fn find_lit_is_the_first_occurrence() {
    let naive = |h: &[u8], l: &[u8]| h.windows(l.len()).position(|w| w == l);
    let alphabet = [b'"', b'!', b'#', b' ', b'x', 0x00, 0x01, 0x80, 0xff];
    let lits: [&[u8]; 5] = [b"\"", b"\" ", b"\"\"", b"\" uht=\"", b"\"!#\"!#\"!#x"];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..=80 {
        for _ in 0..400 {
            let h: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Mostly `x` in every other round: first matches far into long haystacks.
                    if len % 2 == 1 && seed % 8 != 0 {
                        b'x'
                    } else {
                        alphabet[(seed >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            // And from a position inside the haystack (as `parse_into` searches the rest of a
            // line): the first occurrence at or after it.
            let from = (seed >> 40) as usize % (len + 1);
            for l in lits {
                assert_eq!(find_lit(&h, &Lit::new(l)), naive(&h, l), "{h:?} {l:?}");
                let want = naive(&h[from..], l).map(|p| p + from);
                assert_eq!(find_at(&h, from, &Lit::new(l)), want, "{h:?} {l:?} from {from}");
            }
        }
    }
}

/// A list followed by a literal that opens with a quote is read by the search alone (no
/// item-by-item walk): the same split as the walk gives, on lists with both separators.
#[test]
fn quoted_lists_split_as_the_item_walk_does() {
    let f =
        AccessFormat::compile_fields("q", r#"ua="$upstream_addr" us="$upstream_status" t=$upstream_response_time x"#)
            .unwrap();
    let line = br#"ua="10.0.0.1:80, 10.0.0.2:80 : unix:/s.sock" us="502, 504 : 200" t=0.001, 0.002 : 0.003 x"#;
    let mut l = AccessLine::default();
    assert!(f.parse_into(line, &mut l));
    assert_eq!(l.raw(Var::UpstreamAddr), Some(&b"10.0.0.1:80, 10.0.0.2:80 : unix:/s.sock"[..]));
    assert_eq!(l.raw(Var::UpstreamStatus), Some(&b"502, 504 : 200"[..]));
    assert_eq!(l.raw(Var::UpstreamResponseTime), Some(&b"0.001, 0.002 : 0.003"[..]));
    for (lit, ends) in [(&b"\" "[..], true), (b"\\\"", true), (b" ", false), (b", x", false)] {
        assert_eq!(Lit::new(lit).ends_items(), ends, "{lit:?}");
    }
}

/// `parse_secs_ms` agrees with a reading by `str::parse` on every string of up to 9 bytes
/// over digits, `.`, `-` and `x` drawn at random (and on the shapes nginx writes).
#[test]
fn seconds_parse_as_decimal_text_does() {
    let oracle = |b: &[u8]| -> Option<u32> {
        let s = std::str::from_utf8(b).ok()?;
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let ok = |p: &str, max: usize| p.len() <= max && p.bytes().all(|c| c.is_ascii_digit());
        if int.is_empty() || !ok(int, 6) || !ok(frac, 3) {
            return None;
        }
        Some(int.parse::<u32>().ok()? * 1000 + format!("{frac:0<3}").parse::<u32>().ok()?)
    };
    for v in ["0.000", "0.349", "12.5", "7", "7.", "999999.999", "1000000", ".5", "-", "", "0.1234", "1.2.3"] {
        assert_eq!(parse_secs_ms(v.as_bytes()), oracle(v.as_bytes()), "{v:?}");
    }
    let alphabet = b"0123456789..-x";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 10) as usize;
        let v: Vec<u8> = (0..n).map(|k| alphabet[((seed >> (4 * k + 4)) % alphabet.len() as u64) as usize]).collect();
        assert_eq!(parse_secs_ms(&v), oracle(&v), "{:?}", String::from_utf8_lossy(&v));
    }
}

/// A line split into the `AccessLine` the previous line of the format left (as the scan does)
/// reads as it does into a fresh one: after lines with extra fields, after lines that did not
/// fit, for a format ending with a literal and one ending with a variable. Mutation-checked:
/// `trailing` left as the last line set it fails.
#[test]
fn a_kept_line_splits_as_a_fresh_one() {
    let formats = [r#"[$time_local] "$request" $status rt=$request_time h="$host""#, r#"[$time_local] $status $host"#];
    let lines: [&[u8]; 8] = [
        br#"[05/Dec/2026:10:00:00 +0100] "GET / HTTP/1.1" 200 rt=0.001 h="a.example""#,
        br#"[05/Dec/2026:10:00:01 +0100] "GET /x HTTP/1.1" 502 rt=1.5 h="b.example" extra="1""#,
        br#"[05/Dec/2026:10:00:02 +0100] "GET /y HTTP/1.1" 504"#,
        br#"[05/Dec/2026:10:00:03 +0100] "POST /z HTTP/1.1" 499 rt=0.2 h="c.example""#,
        br#"not a line of either format"#,
        br#"[05/Dec/2026:10:00:04 +0100] 200 a.example"#,
        br#"[05/Dec/2026:10:00:05 +0100] 502 b.example extra="1""#,
        br#"[05/Dec/2026:10:00:06 +0100] "GET / HTTP/1.1" 200 rt=0.003 h="d.example""#,
    ];
    let mut split = 0;
    for src in formats {
        let f = AccessFormat::compile_fields("k", src).unwrap();
        let mut kept = AccessLine::default();
        for line in lines {
            let mut fresh = AccessLine::default();
            let ok = f.parse_into(line, &mut fresh);
            assert_eq!(f.parse_into(line, &mut kept), ok, "{src} {}", String::from_utf8_lossy(line));
            if ok {
                assert_eq!(
                    (kept.vals, kept.trailing),
                    (fresh.vals, fresh.trailing),
                    "{}",
                    String::from_utf8_lossy(line)
                );
                split += 1;
            }
        }
    }
    // Four lines fit the first format (one with an extra field: trailing); every line with a
    // stamp fits the second (splitting checks no value's kind; its last variable takes the rest).
    assert_eq!(split, 4 + 7);
}
