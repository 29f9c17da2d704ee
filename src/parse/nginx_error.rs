//! nginx `error.log` entries.
//!
//! Input: one entry's bytes: a line starting `YYYY/MM/DD HH:MM:SS [level] pid#tid: ` plus
//! any continuation lines (multi-line `FastCGI sent in stderr` payloads), without the final
//! newline. Output: `ErrorLine`, borrowing every field from the input. Invariants: no
//! allocation, no panic on any bytes; the context suffix (`, client: ... , referrer: "..."`)
//! is only accepted when it parses to the end of the entry, so text inside the message that
//! imitates it (`client: 127.0.0.1` in a user name, `", host: "` in a request line) is not
//! mistaken for it; the errno `(N: text)` is the one just before ` while ...`.

use super::values::digits;
use super::{rfind_at, rfind_iter_at};
use crate::model::Level;

/// One parsed entry.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ErrorLine<'a> {
    /// `YYYY/MM/DD HH:MM:SS`, zone-less local time.
    pub stamp: &'a [u8],
    pub level: Option<Level>,
    pub pid: u32,
    pub tid: u32,
    pub conn: Option<u64>,
    /// Message without errno, action and context.
    pub text: &'a [u8],
    /// Message as nginx wrote it before the context (text + errno + ` while ...`).
    pub message: &'a [u8],
    pub errno: Option<i32>,
    pub errno_text: Option<&'a [u8]>,
    pub action: Option<&'a [u8]>,
    pub client: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    pub request: Option<&'a [u8]>,
    pub subrequest: Option<&'a [u8]>,
    pub upstream: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
    pub referrer: Option<&'a [u8]>,
    /// Resolver lines: `, resolver: 127.0.0.1:53`.
    pub resolver: Option<&'a [u8]>,
}

/// Does this physical line start a new entry (`YYYY/MM/DD HH:MM:SS [`)?
#[inline]
pub fn is_entry_start(line: &[u8]) -> bool {
    line.len() >= 21
        && line[4] == b'/'
        && line[7] == b'/'
        && line[10] == b' '
        && line[13] == b':'
        && line[19] == b' '
        && line[20] == b'['
        && line[..4].iter().all(u8::is_ascii_digit)
}

/// Can a continuation line follow this (first) line? Only FastCGI stderr payloads span
/// lines, and only while the closing context has not been seen.
pub fn opens_continuation(first_line: &[u8]) -> bool {
    find!(first_line, b" sent in stderr: \"").is_some() && !has_context(first_line)
}

/// True if the entry so far ends with a complete context suffix.
pub fn has_context(entry: &[u8]) -> bool {
    find_context(entry).is_some()
}

/// Parse one entry. `None` when the header does not fit the nginx layout.
pub fn parse(entry: &[u8]) -> Option<ErrorLine<'_>> {
    if !is_entry_start(entry) {
        return None;
    }
    let stamp = &entry[..19];
    let rest = &entry[21..];
    let close = memchr::memchr(b']', rest)?;
    let level = Level::from_nginx(&rest[..close]);
    level?;
    let rest = rest.get(close + 1..)?.strip_prefix(b" ")?;
    // pid#tid:
    let hash = memchr::memchr(b'#', rest)?;
    let pid = digits(&rest[..hash], 19)? as u32;
    let rest = &rest[hash + 1..];
    let colon = memchr::memchr(b':', rest)?;
    let tid = digits(&rest[..colon], 19)? as u32;
    let mut rest = rest.get(colon + 1..)?;
    rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let mut conn = None;
    if let Some(r) = rest.strip_prefix(b"*") {
        let sp = memchr::memchr(b' ', r).unwrap_or(r.len());
        if let Some(c) = digits(&r[..sp], 19) {
            conn = Some(c);
            rest = r.get(sp + 1..).unwrap_or(&[]);
        }
    }
    let mut out = ErrorLine { stamp, level, pid, tid, conn, ..Default::default() };
    // The stream module ends its context with byte counters (`, bytes from/to client:0/0,
    // bytes from/to upstream:0/0`, ngx_stream_proxy_log_error): not part of what follows.
    if let Some(b) = stream_counters(rest) {
        rest = &rest[..b];
    }
    let msg_end = match find_context(rest) {
        Some((at, ctx)) => {
            out.client = ctx.client;
            out.server = ctx.server;
            out.request = ctx.request;
            out.subrequest = ctx.subrequest;
            out.upstream = ctx.upstream;
            out.host = ctx.host;
            out.referrer = ctx.referrer;
            at
        }
        None => match rfind_at(rest, b", resolver: ", 0) {
            Some(at) if !rest[at + 12..].contains(&b' ') => {
                out.resolver = Some(&rest[at + 12..]);
                at
            }
            _ => rest.len(),
        },
    };
    let message = &rest[..msg_end];
    out.message = message;
    let mut text = message;
    // ` while <action>`: the last one, and only if it looks like an action (no quotes).
    if let Some(w) = action_at(text) {
        out.action = Some(&text[w + 7..]);
        text = &text[..w];
    }
    // ` (N: text)` at the end of what remains.
    if text.last() == Some(&b')') {
        if let Some(open) = rfind_at(text, b" (", 1) {
            let inner = &text[open + 2..text.len() - 1];
            if let Some(c) = memchr::memchr(b':', inner) {
                let (num, txt) = (&inner[..c], &inner[c + 1..]);
                let (neg, num) = match num.strip_prefix(b"-") {
                    Some(n) => (true, n),
                    None => (false, num),
                };
                if let (Some(n), Some(t)) = (digits(num, 19), txt.strip_prefix(b" ")) {
                    if n < 1_000_000 {
                        out.errno = Some(if neg { -(n as i32) } else { n as i32 });
                        out.errno_text = Some(t);
                        text = &text[..open];
                    }
                }
            }
        }
    }
    out.text = text;
    Some(out)
}

/// Where the stream module's byte counters start: the last `, bytes from/to client:` when
/// only letters, digits and `,/: ` follow it. Searched only within the run of those bytes
/// at the end (usually none: a context ends with a quote or a dot), which holds the last
/// occurrence whenever it qualifies; searching the whole entry from its end was about 300
/// instructions an entry of the noisy bench's error log.
fn stream_counters(rest: &[u8]) -> Option<usize> {
    let counter_byte = |c: &u8| c.is_ascii_alphanumeric() || b",/: ".contains(c);
    let start = rest.iter().rposition(|c| !counter_byte(c)).map_or(0, |p| p + 1);
    rfind_at(&rest[start..], b", bytes from/to client:", 0).map(|b| start + b)
}

/// Where ` while <action>` starts: its last occurrence, when the action after it is 1 to 64
/// bytes with no quote. Searched only within the last 71 bytes, which hold the last
/// occurrence whenever its action is short enough (the search over the whole message found
/// the same occurrence and then rejected it).
fn action_at(text: &[u8]) -> Option<usize> {
    let from = text.len().saturating_sub(64 + 7);
    let w = from + rfind_at(&text[from..], b" while ", 1)?;
    let action = &text[w + 7..];
    (!action.is_empty() && action.len() <= 64 && !action.contains(&b'"')).then_some(w)
}

#[derive(Default, Clone, Copy, Debug, PartialEq)]
struct Context<'a> {
    client: Option<&'a [u8]>,
    server: Option<&'a [u8]>,
    request: Option<&'a [u8]>,
    subrequest: Option<&'a [u8]>,
    upstream: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
    referrer: Option<&'a [u8]>,
}

/// Keys in the order `ngx_http_log_error` writes them; the quoted ones after `server`.
const QUOTED: [&[u8]; 5] = [b", request: \"", b", subrequest: \"", b", upstream: \"", b", host: \"", b", referrer: \""];

/// Cap on tried start positions / terminators, so hostile lines stay linear-ish.
const MAX_CANDIDATES: usize = 16;

/// Find the context suffix: the last `, client: ` from which the rest parses completely
/// (nginx appends the context after the message, so text imitating it in the message comes
/// earlier; a fake one inside a quoted value at the end fails the strict client rule).
fn find_context(s: &[u8]) -> Option<(usize, Context<'_>)> {
    for (n, at) in rfind_iter_at(s, b", client: ", 0).enumerate() {
        if n >= MAX_CANDIDATES {
            break;
        }
        if let Some(ctx) = parse_context(&s[at + 10..]) {
            return Some((at, ctx));
        }
    }
    // Lines logged before a request exists carry only `, server: ` (e.g. SSL handshakes on
    // the listen socket are preceded by `client:`; nothing else starts with server).
    None
}

fn parse_context(s: &[u8]) -> Option<Context<'_>> {
    let mut ctx = Context::default();
    // client: up to ", " or end; an address never contains a comma.
    let end = find!(s, b", ").unwrap_or(s.len());
    let mut client = &s[..end];
    // The mail proxy writes `client: 1.2.3.4 using starttls`.
    if let Some(sp) = memchr::memchr(b' ', client) {
        if !client[sp..].starts_with(b" using ") {
            return None;
        }
        client = &client[..sp];
    }
    if client.is_empty() || client.contains(&b'"') {
        return None;
    }
    ctx.client = Some(client);
    let mut rest = &s[end..];
    if let Some(r) = rest.strip_prefix(b", server: ") {
        // server: up to the next quoted key or end. Every key starts with a comma: the first
        // comma that starts one (five searches of the rest, one per key, cost more: a server
        // name has no comma, so the first comma is almost always the key).
        let stop =
            memchr::memchr_iter(b',', r).find(|&p| QUOTED.iter().any(|k| r[p..].starts_with(k))).unwrap_or(r.len());
        ctx.server = Some(&r[..stop]);
        rest = &r[stop..];
    }
    if rest.is_empty() {
        return Some(ctx);
    }
    quoted_fields(rest, 0, ctx)
}

/// Parse `, key: "value"` fields from position `from` in `QUOTED` order, to the end of `s`.
/// A value ends at a `"` followed by the end or by a later key. Request lines and Host
/// headers are client-controlled and may contain `", host: "`, so several splits can fit;
/// the one that yields the most fields wins (ties: the shortest first value), searched
/// within a fixed budget.
fn quoted_fields<'a>(s: &'a [u8], from: usize, ctx: Context<'a>) -> Option<Context<'a>> {
    if let Some(c) = greedy_split(s, from, ctx) {
        return Some(c);
    }
    let mut budget = 64;
    best_split(s, from, ctx, &mut budget).map(|(_, c)| c)
}

/// `best_split`'s answer when no value holds a `"`, without its search: each value ends at
/// its first quote, which is followed by a later key or the end (or, a last value cut at
/// nginx's 2048 bytes, there is no quote). Every quote is then a key's or a value's end, so
/// any other split makes some value longer, swallowing the key after it: fewer fields. `None`
/// when a value's first quote is not an end (a quote inside a value): the search decides.
/// (The search scanned every later quote at every key, 1,950 instructions an entry with a
/// context, callgrind, the noisy 256 MB corpus.)
fn greedy_split<'a>(mut s: &'a [u8], mut from: usize, mut ctx: Context<'a>) -> Option<Context<'a>> {
    while !s.is_empty() {
        let k = (from..QUOTED.len()).find(|&i| s.starts_with(QUOTED[i]))?;
        let body = &s[QUOTED[k].len()..];
        let Some(q) = memchr::memchr(b'"', body) else {
            set_field(&mut ctx, k, body);
            return Some(ctx);
        };
        let tail = &body[q + 1..];
        if !(tail.is_empty() || QUOTED[k + 1..].iter().any(|key| tail.starts_with(key))) {
            return None;
        }
        set_field(&mut ctx, k, &body[..q]);
        (s, from) = (tail, k + 1);
    }
    Some(ctx)
}

fn best_split<'a>(s: &'a [u8], from: usize, mut ctx: Context<'a>, budget: &mut usize) -> Option<(usize, Context<'a>)> {
    if s.is_empty() {
        return Some((0, ctx));
    }
    let k = (from..QUOTED.len()).find(|&i| s.starts_with(QUOTED[i]))?;
    let body = &s[QUOTED[k].len()..];
    let mut best: Option<(usize, Context<'a>)> = None;
    for q in memchr::memchr_iter(b'"', body) {
        let tail = &body[q + 1..];
        let ok_end = tail.is_empty() || QUOTED[k + 1..].iter().any(|key| tail.starts_with(key));
        if !ok_end {
            continue;
        }
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let mut c2 = ctx;
        set_field(&mut c2, k, &body[..q]);
        if let Some((n, done)) = best_split(tail, k + 1, c2, budget) {
            if best.as_ref().is_none_or(|b| n + 1 > b.0) {
                best = Some((n + 1, done));
            }
        }
    }
    if best.is_some() {
        return best;
    }
    // nginx cuts entries at 2048 bytes: an unterminated last value runs to the end.
    if !body.contains(&b'"') {
        set_field(&mut ctx, k, body);
        return Some((1, ctx));
    }
    None
}

fn set_field<'a>(c: &mut Context<'a>, k: usize, v: &'a [u8]) {
    match k {
        0 => c.request = Some(v),
        1 => c.subrequest = Some(v),
        2 => c.upstream = Some(v),
        3 => c.host = Some(v),
        _ => c.referrer = Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The bounded searches answer what the searches over the whole text answered (the
        /// last occurrence, then its test), on texts built of the needles, the bytes the
        /// tests look at and long runs of allowed ones.
        #[test]
        fn bounded_searches_are_the_whole_searches(parts in proptest::collection::vec(prop_oneof![
            Just(&b", bytes from/to client:"[..]), Just(&b", bytes from/to upstream:0/0"[..]),
            Just(&b" while "[..]), Just(&b"\""[..]), Just(&b"."[..]), Just(&b"12/34"[..]),
            Just(&b"reading response header from upstream"[..]), Just(&b"x"[..]),
            Just(&b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..]),
        ], 0..12)) {
            let text: Vec<u8> = parts.concat();
            let whole_counters = rfind_at(&text, b", bytes from/to client:", 0)
                .filter(|&b| text[b..].iter().all(|c| c.is_ascii_alphanumeric() || b",/: ".contains(c)));
            prop_assert_eq!(stream_counters(&text), whole_counters);
            let whole_action = rfind_at(&text, b" while ", 1).filter(|&w| {
                let a = &text[w + 7..];
                !a.is_empty() && a.len() <= 64 && !a.contains(&b'"')
            });
            prop_assert_eq!(action_at(&text), whole_action);
        }
    }

    /// Where the first-quote split answers, it is the search's answer: context tails drawn from
    /// the keys in and out of order, values of quotes, commas, spaces, colons and whole keys,
    /// and values cut short. Both answers (the first quote's and the search's) occur, 18 k and
    /// 32 k of 50 k. Mutation-checked: values ended at their last quote instead of their first
    /// fails it.
    #[test]
    fn first_quote_split_is_the_searched_split() {
        let pieces: [&[u8]; 6] = [b"\"", b",", b" ", b":", b"x", b"GET /"];
        let mut seed = 0x5851_f42d_4c95_7f2du64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let (mut fast, mut searched) = (0, 0);
        for _ in 0..50_000 {
            let mut s = Vec::new();
            let mut k = 0;
            for _ in 0..1 + rnd(5) {
                // Mostly the next keys in order, sometimes an earlier one.
                k = if rnd(6) == 0 { rnd(5) as usize } else { (k + rnd(2) as usize).min(4) };
                s.extend_from_slice(QUOTED[k]);
                for _ in 0..rnd(4) {
                    match rnd(10) {
                        0 => s.extend_from_slice(QUOTED[rnd(5) as usize]),
                        _ => s.extend_from_slice(pieces[rnd(6) as usize]),
                    }
                }
                if rnd(8) != 0 {
                    s.push(b'"');
                }
                k += 1;
                if k == 5 {
                    break;
                }
            }
            let searched_answer = best_split(&s, 0, Context::default(), &mut 64).map(|(_, c)| c);
            match greedy_split(&s, 0, Context::default()) {
                Some(c) => {
                    assert_eq!(Some(c), searched_answer, "{}", String::from_utf8_lossy(&s));
                    fast += 1;
                }
                None => searched += 1,
            }
        }
        assert!(fast > 10_000 && searched > 1_000, "{fast} {searched}");
    }

    fn p(s: &str) -> ErrorLine<'_> {
        parse(s.as_bytes()).unwrap_or_else(|| panic!("no parse: {s}"))
    }

    fn st(b: Option<&[u8]>) -> Option<&str> {
        b.map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn full_layout() {
        let l = p("2024/05/01 10:00:00 [crit] 1234#0: *56 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 203.0.113.9, server: example.com, request: \"GET /index.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"");
        assert_eq!(l.level, Some(Level::Crit));
        assert_eq!((l.pid, l.tid, l.conn), (1234, 0, Some(56)));
        assert_eq!(st(Some(l.text)), Some("connect() to unix:/run/php/php8.2-fpm.sock failed"));
        assert_eq!(l.errno, Some(2));
        assert_eq!(st(l.errno_text), Some("No such file or directory"));
        assert_eq!(st(l.action), Some("connecting to upstream"));
        assert_eq!(st(l.client), Some("203.0.113.9"));
        assert_eq!(st(l.server), Some("example.com"));
        assert_eq!(st(l.request), Some("GET /index.php HTTP/1.1"));
        assert_eq!(st(l.upstream), Some("fastcgi://unix:/run/php/php8.2-fpm.sock:"));
        assert_eq!(st(l.host), Some("example.com"));
        assert_eq!(l.referrer, None);
    }

    #[test]
    fn without_connection_or_context() {
        let l = p("2024/05/01 10:00:00 [notice] 1#1: signal process started");
        assert_eq!(l.conn, None);
        assert_eq!(st(Some(l.text)), Some("signal process started"));
        assert_eq!(l.client, None);
    }

    #[test]
    fn errno_before_while_and_referrer() {
        let l = p("2026/11/22 03:41:07 [error] 77#77: *9 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: api.test, request: \"POST /api?x=1 HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"api.test\", referrer: \"http://a.test/\"");
        assert_eq!(l.errno, Some(110));
        assert_eq!(st(l.action), Some("reading response header from upstream"));
        assert_eq!(st(l.referrer), Some("http://a.test/"));
    }

    #[test]
    fn fake_client_in_message_is_not_context() {
        // fail2ban's username injection: the real context is the last one.
        let l = p("2024/05/01 10:00:00 [error] 1#0: *1 user \"x, client: 127.0.0.1\" was not found in \"/etc/htpasswd\", client: 198.51.100.7, server: s, request: \"GET / HTTP/1.1\", host: \"s\"");
        assert_eq!(st(l.client), Some("198.51.100.7"));
        assert!(std::str::from_utf8(l.text).unwrap().contains("client: 127.0.0.1"));
    }

    #[test]
    fn quote_and_key_inside_request_line() {
        let l = p("2024/05/01 10:00:00 [error] 1#0: *1 no live upstreams while connecting to upstream, client: 10.0.0.1, server: s, request: \"GET /a\", host: \"b HTTP/1.1\", upstream: \"http://backend/a\", host: \"s\"");
        assert_eq!(st(l.request), Some("GET /a\", host: \"b HTTP/1.1"));
        assert_eq!(st(l.upstream), Some("http://backend/a"));
        assert_eq!(st(l.host), Some("s"));
    }

    #[test]
    fn multiline_fastcgi_stderr() {
        let e = "2026/11/22 03:41:07 [error] 5#5: *3 FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught Exception: boom in /var/www/fatal.php:3\nStack trace:\n#0 {main}\n  thrown in /var/www/fatal.php on line 3\" while reading response header from upstream, client: 127.0.0.1, server: shop.test, request: \"GET /fatal.php?rid=x HTTP/1.1\", upstream: \"fastcgi://unix:/tmp/php.sock:\", host: \"shop.test\"";
        let first = e.split('\n').next().unwrap();
        assert!(opens_continuation(first.as_bytes()));
        assert!(has_context(e.as_bytes()));
        let l = p(e);
        assert_eq!(st(l.action), Some("reading response header from upstream"));
        assert_eq!(st(l.request), Some("GET /fatal.php?rid=x HTTP/1.1"));
        assert!(l.text.ends_with(b"line 3\""));
    }

    #[test]
    fn resolver_and_ssl_lines() {
        let l = p("2024/05/01 10:00:00 [error] 1#0: recv() failed (111: Connection refused) while resolving, resolver: 127.0.0.11:53");
        assert_eq!(l.errno, Some(111));
        assert_eq!(st(l.action), Some("resolving"));
        assert_eq!(st(l.resolver), Some("127.0.0.11:53"));
        let s = p("2024/05/01 10:00:00 [error] 1#0: *2 SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"https://127.0.0.1:8443/\", host: \"s\"");
        assert_eq!(s.errno, None);
        assert_eq!(st(s.action), Some("SSL handshaking to upstream"));
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "2024/05/01 10:00:00 [",
            "2024/05/01 10:00:00 [bogus] 1#0: x",
            "2024/05/01 10:00:00 [error] x#0: y",
            "2024/05/01 10:00:00 [error] 1#0:",
            "2024/05/01 10:00:00 [error] 1#0: *",
            "2024/05/01 10:00:00 [error] 1#0: x (: y)",
            "2024/05/01 10:00:00 [error] 1#0: x, client: , server: ",
            "2024/05/01 10:00:00 [error] 1#0: x, client: a, request: \"b",
        ] {
            let _ = parse(s.as_bytes());
        }
        assert!(parse(b"2024/05/01 10:00:00 [bogus] 1#0: x").is_none());
        let t = p("2024/05/01 10:00:00 [error] 1#0: x, client: a, request: \"b");
        assert_eq!(st(t.request), Some("b"));
    }
}
