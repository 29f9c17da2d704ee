//! Envelopes: what a log line was wrapped in on its way to the file, and the line inside.
//!
//! Input: one physical line (without its newline) and the envelope its file mostly carries
//! (tried first). Output: `Unwrapped`: the envelope (if any), the inner line (borrowed from
//! the input, or decoded into the caller's scratch buffer when the envelope escapes it), the
//! envelope's time, the container stream, the program or container name, the host, and
//! whether the record continues in the next one (Docker splits lines over 16 KiB, CRI writes
//! `P` pieces). Invariants: recognition is by content only (never by file name); no
//! allocation but the scratch buffer's growth; no panic on any bytes; a line no envelope
//! fits is returned as it is (`envelope: None`).
//!
//! Recognised (README, Inputs): Docker json-file records, CRI lines, `docker compose logs`
//! prefixes, `docker logs -t` stamps, syslog as rsyslog and syslog-ng write it (RFC 3164 with
//! or without `<PRI>`, rsyslog's RFC 3339 stamps, `journalctl -o short`, `short-iso`,
//! `short-precise`), RFC 5424, and `journalctl -o json` records. rsyslog writes control
//! characters of a message as `#ooo` (a multi-line nginx entry arrives as one line with
//! `#012` between its lines): they are decoded.

pub mod json;
mod syslog;

use syslog::{octal_into, rfc5424, syslog};

use crate::model::time::{bsd_prefix, iso_prefix};
use crate::model::{Envelope, Stream, Ts};
use memchr::memmem;

/// The time an envelope gives a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvTime {
    None,
    /// An instant (milliseconds, UTC).
    Utc(Ts),
    /// Wall-clock milliseconds (read as UTC), to be placed in the analysis zone.
    Wall(Ts),
    /// A BSD syslog stamp, which has no year: (month, day, milliseconds of the day).
    NoYear(u32, u32, Ts),
}

/// One line with its envelope taken off.
#[derive(Clone, Copy, Debug)]
pub struct Unwrapped<'a> {
    pub envelope: Option<Envelope>,
    pub inner: &'a [u8],
    pub time: EnvTime,
    /// The record continues in the next one of the same stream (Docker's 16 KiB pieces
    /// without a final `\n`, CRI's `P`).
    pub partial: bool,
    pub stream: Option<Stream>,
    /// Program (syslog tag, journal identifier) or compose service; empty if none.
    pub name: &'a [u8],
    pub host: &'a [u8],
    pub pid: Option<u32>,
    /// Bytes before the message (`journalctl` indents a message's further lines by this).
    pub header_len: usize,
    /// No envelope, but the line starts with spaces: with a journal or syslog envelope around
    /// it, a further line of the previous message (`journalctl` prints them indented).
    pub indented: usize,
}

impl<'a> Unwrapped<'a> {
    fn bare(line: &'a [u8]) -> Self {
        Unwrapped {
            envelope: None,
            inner: line,
            time: EnvTime::None,
            partial: false,
            stream: None,
            name: &[],
            host: &[],
            pid: None,
            header_len: 0,
            indented: line.iter().take_while(|&&c| c == b' ').count(),
        }
    }
}

/// How the inner bytes are escaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Esc {
    No,
    /// A JSON string's raw bytes.
    Json,
    /// rsyslog's `#ooo` control-character escapes.
    Octal,
    /// A journal export's `[104,105]` byte array (messages that are not UTF-8).
    ByteArray,
}

struct Parts<'a> {
    u: Unwrapped<'a>,
    esc: Esc,
}

/// Take the envelope off `line`. `first`: the envelope its file mostly carries, tried first
/// (the others are tried after it, so files that mix envelopes are read too).
pub fn unwrap<'a>(line: &'a [u8], scratch: &'a mut Vec<u8>, first: Option<Envelope>) -> Unwrapped<'a> {
    if first == Some(Envelope::DockerJson) {
        if let Some((stream, time, escaped)) = docker_json_fast(line, scratch) {
            let mut u = Unwrapped::bare(line);
            u.envelope = Some(Envelope::DockerJson);
            u.indented = 0;
            u.stream = Some(stream);
            u.time = time;
            u.inner = if escaped { &scratch[..] } else { &line[DOCKER_LOG.len()..DOCKER_LOG.len() + scratch.len()] };
            u.inner = finish_json_log(u.envelope, u.inner, &mut u.partial);
            return u;
        }
    }
    let parts = first.and_then(|e| parse_as(line, e)).or_else(|| {
        let c = *line.first()?;
        let order: &[Envelope] = match c {
            b'{' => &[Envelope::DockerJson, Envelope::JournalJson],
            b'<' => &[Envelope::Syslog5424, Envelope::Syslog],
            b'0'..=b'9' => &[Envelope::Cri, Envelope::Syslog, Envelope::DockerTimestamps],
            b'A'..=b'Z' => &[Envelope::Syslog, Envelope::Compose],
            _ => &[Envelope::Compose],
        };
        order.iter().filter(|e| Some(**e) != first).find_map(|e| parse_as(line, *e))
    });
    let Some(Parts { mut u, esc }) = parts else { return Unwrapped::bare(line) };
    match esc {
        Esc::No => {}
        Esc::Json | Esc::ByteArray => {
            scratch.clear();
            let ok =
                if esc == Esc::Json { json::unescape_into(u.inner, scratch) } else { bytes_into(u.inner, scratch) };
            if !ok {
                return Unwrapped::bare(line);
            }
            u.inner = finish_json_log(u.envelope, scratch, &mut u.partial);
        }
        Esc::Octal => {
            scratch.clear();
            octal_into(u.inner, scratch);
            u.inner = &scratch[..];
        }
    }
    u
}

/// A Docker record's `log` ends in `\n` unless Docker split the line (then the next record
/// of the stream continues it); the newline (and a `\r` before it) is not part of the line.
fn finish_json_log<'s>(env: Option<Envelope>, s: &'s [u8], partial: &mut bool) -> &'s [u8] {
    if env != Some(Envelope::DockerJson) {
        return s;
    }
    match s.strip_suffix(b"\n") {
        Some(l) => {
            *partial = false;
            l.strip_suffix(b"\r").unwrap_or(l)
        }
        None => {
            *partial = true;
            s
        }
    }
}

fn parse_as(line: &[u8], e: Envelope) -> Option<Parts<'_>> {
    match e {
        Envelope::DockerJson => docker_json(line),
        Envelope::JournalJson => journal_json(line),
        Envelope::Cri => cri(line),
        Envelope::Compose => compose(line),
        Envelope::DockerTimestamps => docker_ts(line),
        Envelope::Syslog => syslog(line),
        Envelope::Syslog5424 => rfc5424(line),
    }
}

fn parts<'a>(line: &'a [u8], envelope: Envelope, inner: &'a [u8], esc: Esc) -> Parts<'a> {
    let mut u = Unwrapped::bare(line);
    u.envelope = Some(envelope);
    u.inner = inner;
    u.indented = 0;
    Parts { u, esc }
}

fn iso_time(b: &[u8]) -> Option<(EnvTime, usize)> {
    let (wall, off, n) = iso_prefix(b)?;
    Some((off.map_or(EnvTime::Wall(wall), |o| EnvTime::Utc(wall - o as i64 * 1000)), n))
}

fn stream_of(b: &[u8]) -> Option<Stream> {
    match b {
        b"stdout" => Some(Stream::Stdout),
        b"stderr" => Some(Stream::Stderr),
        _ => None,
    }
}

const DOCKER_LOG: &[u8] = b"{\"log\":\"";

/// Docker json-file's own layout, `{"log":"...","stream":"stdout","time":"..."}` in that
/// order: the `log` string is scanned and unescaped into `scratch` in one pass (the general
/// scanner finds the string's end, then decodes it again: twice the work on the hot path of a
/// container's log). Any other layout returns `None` and takes the general path. Returns the
/// stream, the time and whether the log held escapes (if not, `scratch` holds nothing but
/// its length is the log's).
fn docker_json_fast(line: &[u8], scratch: &mut Vec<u8>) -> Option<(Stream, EnvTime, bool)> {
    let body = line.strip_prefix(DOCKER_LOG)?;
    scratch.clear();
    let mut from = 0;
    let mut skip = 0;
    let mut escaped = false;
    let mut end = None;
    for p in memchr::memchr2_iter(b'"', b'\\', body) {
        if p < skip {
            continue;
        }
        if body[p] == b'"' {
            end = Some(p);
            break;
        }
        // A backslash: decode the escape (`\uXXXX` and the rare ones by the general decoder).
        escaped = true;
        scratch.extend_from_slice(&body[from..p]);
        let c = *body.get(p + 1)?;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            _ => return None,
        };
        scratch.push(simple);
        from = p + 2;
        skip = p + 2;
    }
    let end = end?;
    if escaped {
        scratch.extend_from_slice(&body[from..end]);
    } else {
        // No escape: the log is `body[..end]`; say how long through the buffer's length.
        scratch.resize(end, 0);
    }
    let rest = body[end..].strip_prefix(b"\",\"stream\":\"")?;
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout\"") {
        (Stream::Stdout, r)
    } else {
        (Stream::Stderr, rest.strip_prefix(b"stderr\"")?)
    };
    let rest = rest.strip_prefix(b",\"time\":\"")?;
    let q = memchr::memchr(b'"', rest)?;
    let tail = &rest[q + 1..];
    if !(tail == b"}" || tail.strip_prefix(b"}").is_some_and(|t| t.iter().all(|c| c.is_ascii_whitespace()))) {
        return None;
    }
    let (time, n) = iso_time(&rest[..q])?;
    (n == q).then_some((stream, time, escaped))
}

/// A complete Docker json-file record in Docker's own layout, read from its end without
/// decoding the `log` string: its content still escaped, less the final `\n` (and a `\r`
/// before it). `None` for anything else (other layouts, split pieces), which `unwrap` reads.
/// The envelope time is not read: the callers use it for lines that carry their own stamp.
#[inline]
pub fn docker_json_raw(line: &[u8]) -> Option<(Stream, &[u8])> {
    let body = line.strip_prefix(DOCKER_LOG)?;
    let body = body.strip_suffix(b"\"}").or_else(|| body.trim_ascii_end().strip_suffix(b"\"}"))?;
    // The time's opening quote: a short scan back over the stamp.
    let q = body.iter().rposition(|&c| c == b'"')?;
    let rest = body[..q].strip_suffix(b"\",\"time\":")?;
    let (stream, rest) = if let Some(r) = rest.strip_suffix(b"stdout") {
        (Stream::Stdout, r)
    } else {
        (Stream::Stderr, rest.strip_suffix(b"stderr")?)
    };
    let log = rest.strip_suffix(b"\",\"stream\":\"")?;
    // The log ends in an escaped newline: an odd run of backslashes before the `n` (an even
    // one would be a backslash of the text and an unescaped quote after it).
    let text = log.strip_suffix(b"n")?;
    let slashes = text.iter().rev().take_while(|&&c| c == b'\\').count();
    if slashes % 2 == 0 {
        return None;
    }
    let text = &text[..text.len() - 1];
    let text = text
        .strip_suffix(b"\\r")
        .filter(|t| t.iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 0)
        .unwrap_or(text);
    Some((stream, text))
}

/// What `docker_json_raw` read, as `unwrap` would describe the record (its time not read).
pub fn docker_unwrapped<'a>(line: &'a [u8], stream: Stream, raw: &'a [u8]) -> Unwrapped<'a> {
    let mut u = Unwrapped::bare(line);
    u.envelope = Some(Envelope::DockerJson);
    u.indented = 0;
    u.stream = Some(stream);
    u.inner = raw;
    u
}

fn docker_json(line: &[u8]) -> Option<Parts<'_>> {
    if !line.starts_with(b"{\"log\":") {
        return None;
    }
    let (mut log, mut stream, mut time) = (None, None, None);
    let ok = json::members(line, |k, v| match (k, v) {
        (b"log", json::Value::Str { raw, escaped }) => log = Some((raw, escaped)),
        (b"stream", json::Value::Str { raw, .. }) => stream = stream_of(raw),
        (b"time", json::Value::Str { raw, .. }) => time = iso_time(raw).map(|t| t.0),
        _ => {}
    });
    let (raw, escaped) = log.filter(|_| ok)?;
    let mut p = parts(line, Envelope::DockerJson, raw, if escaped { Esc::Json } else { Esc::No });
    p.u.stream = stream;
    p.u.time = time.unwrap_or(EnvTime::None);
    // Without a backslash the value cannot end in `\n`: a piece of a split line.
    p.u.partial = !escaped;
    Some(p)
}

fn journal_json(line: &[u8]) -> Option<Parts<'_>> {
    if !line.starts_with(b"{") || memmem::find(line, b"\"__REALTIME_TIMESTAMP\"").is_none() {
        return None;
    }
    let mut msg: Option<(&[u8], Esc)> = None;
    let (mut time, mut ident, mut unit, mut comm, mut host, mut pid) = (None, None, None, None, None, None);
    let ok = json::members(line, |k, v| {
        let s = match v {
            json::Value::Str { raw, .. } => Some(raw),
            _ => None,
        };
        match k {
            b"MESSAGE" => {
                msg = match v {
                    json::Value::Str { raw, escaped } => Some((raw, if escaped { Esc::Json } else { Esc::No })),
                    json::Value::Array(a) => Some((a, Esc::ByteArray)),
                    _ => None,
                }
            }
            b"__REALTIME_TIMESTAMP" => time = s.and_then(|s| std::str::from_utf8(s).ok()?.parse::<i64>().ok()),
            b"SYSLOG_IDENTIFIER" => ident = s,
            b"_SYSTEMD_UNIT" => unit = s,
            b"_COMM" => comm = s,
            b"_HOSTNAME" => host = s,
            b"_PID" => pid = s.and_then(|s| std::str::from_utf8(s).ok()?.parse().ok()),
            _ => {}
        }
    });
    let (raw, esc) = msg.filter(|_| ok)?;
    let mut p = parts(line, Envelope::JournalJson, raw, esc);
    p.u.time = time.map_or(EnvTime::None, |us| EnvTime::Utc(us.div_euclid(1000)));
    p.u.name = ident.or_else(|| unit.map(|u| u.strip_suffix(b".service").unwrap_or(u))).or(comm).unwrap_or(&[]);
    p.u.host = host.unwrap_or(&[]);
    p.u.pid = pid;
    Some(p)
}

/// `2026-11-22T03:14:42.123456789Z stdout F <line>` (`P`: a piece; the line continues).
fn cri(line: &[u8]) -> Option<Parts<'_>> {
    let (time, n) = iso_time(line)?;
    let rest = line.get(n..)?.strip_prefix(b" ")?;
    let sp = memchr::memchr(b' ', rest)?;
    let stream = stream_of(&rest[..sp])?;
    let rest = &rest[sp + 1..];
    let tag_end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    let tag = &rest[..tag_end];
    let partial = match tag.split(|&c| c == b':').next()? {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    let inner = rest.get(tag_end + 1..).unwrap_or(&[]);
    let mut p = parts(line, Envelope::Cri, inner, Esc::No);
    p.u.time = time;
    p.u.stream = Some(stream);
    p.u.partial = partial;
    p.u.header_len = line.len() - inner.len();
    Some(p)
}

/// `docker compose logs`: `nginx-1    | <line>` (compose v1: `nginx_1  | `), optionally with
/// `-t`'s stamp after the bar.
fn compose(line: &[u8]) -> Option<Parts<'_>> {
    let name_len = line.iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')).count();
    if name_len == 0 || !line[0].is_ascii_alphanumeric() {
        return None;
    }
    let spaces = line[name_len..].iter().take_while(|&&c| c == b' ').count();
    let bar = name_len + spaces;
    if spaces == 0 || line.get(bar) != Some(&b'|') {
        return None;
    }
    let mut inner = &line[bar + 1..];
    inner = inner.strip_prefix(b" ").unwrap_or(inner);
    let mut time = EnvTime::None;
    if let Some((t, n)) = iso_time(inner).filter(|(t, n)| matches!(t, EnvTime::Utc(_)) && inner.get(*n) == Some(&b' '))
    {
        time = t;
        inner = &inner[n + 1..];
    }
    let mut p = parts(line, Envelope::Compose, inner, Esc::No);
    p.u.name = &line[..name_len];
    p.u.time = time;
    p.u.header_len = line.len() - inner.len();
    Some(p)
}

/// `docker logs -t`: `2026-11-22T03:14:42.123456789Z <line>`.
fn docker_ts(line: &[u8]) -> Option<Parts<'_>> {
    let (time, n) = iso_time(line)?;
    if !matches!(time, EnvTime::Utc(_)) {
        return None;
    }
    let inner = match line.get(n) {
        Some(b' ') => &line[n + 1..],
        None => &line[n..],
        _ => return None,
    };
    let mut p = parts(line, Envelope::DockerTimestamps, inner, Esc::No);
    p.u.time = time;
    p.u.header_len = n + 1;
    Some(p)
}

/// A journal export's byte array `[104,105,10]` onto `out`.
fn bytes_into(arr: &[u8], out: &mut Vec<u8>) -> bool {
    let inner = arr.strip_prefix(b"[").and_then(|a| a.strip_suffix(b"]"));
    let Some(inner) = inner else { return false };
    for item in inner.split(|&c| c == b',') {
        let t = item.trim_ascii();
        if t.is_empty() {
            continue;
        }
        match std::str::from_utf8(t).ok().and_then(|s| s.parse::<u8>().ok()) {
            Some(v) => out.push(v),
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
