//! Syslog envelopes: RFC 3164 as rsyslog and syslog-ng write it (with or without `<PRI>`,
//! with rsyslog's RFC 3339 stamps, `journalctl -o short*`) and RFC 5424, and rsyslog's `#ooo`
//! escapes of control characters.
//!
//! Input: one line. Output: its `Parts` (the message, program, pid, host, time). Invariants
//! as the parent module's: by content only, no panic on any bytes.

use super::*;

/// A syslog host name: letters, digits, `.`, `-`, `_`, `:` (an IPv6 address).
pub(super) fn is_host(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= 255
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'))
}

/// `tag[pid]: ` or `tag: ` at the start of `b`: (tag, pid, bytes up to the message).
pub(super) fn tag_prefix(b: &[u8]) -> Option<(&[u8], Option<u32>, usize)> {
    let n = b.iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'/' | b'@')).count();
    if n == 0 || n > 64 || b[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let tag = &b[..n];
    let mut i = n;
    let mut pid = None;
    if b.get(i) == Some(&b'[') {
        let d = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if d == 0 || b.get(i + 1 + d) != Some(&b']') {
            return None;
        }
        pid = std::str::from_utf8(&b[i + 1..i + 1 + d]).ok().and_then(|s| s.parse().ok());
        i += d + 2;
    }
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    match b.get(i) {
        Some(b' ') => Some((tag, pid, i + 1)),
        None => Some((tag, pid, i)),
        _ => None,
    }
}

/// RFC 3164 as files keep it, with or without `<PRI>`, with a BSD stamp (`journalctl -o
/// short`, `short-precise`) or an RFC 3339 one (rsyslog's high-precision template,
/// `journalctl -o short-iso`): `<stamp> <host> <tag>[<pid>]: <message>`.
pub(super) fn syslog(line: &[u8]) -> Option<Parts<'_>> {
    let mut i = pri_len(line).unwrap_or(0);
    let (time, n) = match bsd_prefix(&line[i..]) {
        Some((mo, d, ms, n)) => (EnvTime::NoYear(mo, d, ms), n),
        None => iso_time(&line[i..])?,
    };
    i += n;
    if line.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let hl = line[i..].iter().take_while(|&&c| c != b' ').count();
    let host = &line[i..i + hl];
    if !is_host(host) {
        return None;
    }
    i += hl + 1;
    let (tag, pid, m) = tag_prefix(line.get(i..)?)?;
    i += m;
    let msg = &line[i..];
    let esc = if has_octal_escape(msg) { Esc::Octal } else { Esc::No };
    let mut p = parts(line, Envelope::Syslog, msg, esc);
    p.u.time = time;
    p.u.name = tag;
    p.u.host = host;
    p.u.pid = pid;
    p.u.header_len = i;
    Some(p)
}

/// `<N>` at the start (1 to 3 digits).
pub(super) fn pri_len(b: &[u8]) -> Option<usize> {
    let d = b.strip_prefix(b"<")?.iter().take_while(|c| c.is_ascii_digit()).count();
    ((1..=3).contains(&d) && b.get(d + 1) == Some(&b'>')).then_some(d + 2)
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]`.
pub(super) fn rfc5424(line: &[u8]) -> Option<Parts<'_>> {
    let mut i = pri_len(line)?;
    if !line.get(i..)?.starts_with(b"1 ") {
        return None;
    }
    i += 2;
    let mut field = |line: &[u8]| -> Option<(usize, usize)> {
        let n = line.get(i..)?.iter().take_while(|&&c| c != b' ').count();
        let r = (i, i + n);
        i += n + 1;
        Some(r)
    };
    let ts = field(line)?;
    let host = field(line)?;
    let app = field(line)?;
    let procid = field(line)?;
    let _msgid = field(line)?;
    let time = match &line[ts.0..ts.1] {
        b"-" => EnvTime::None,
        t => iso_time(t).filter(|x| x.1 == t.len())?.0,
    };
    // Structured data: `-` or one or more `[...]` (`\]` escapes a bracket inside).
    let mut j = i.min(line.len());
    let sd_start = j;
    if line.get(j) == Some(&b'-') {
        j += 1;
    } else {
        while line.get(j) == Some(&b'[') {
            j += 1;
            loop {
                match line.get(j)? {
                    b'\\' => j += 2,
                    b']' => {
                        j += 1;
                        break;
                    }
                    _ => j += 1,
                }
            }
        }
        if j == sd_start {
            return None;
        }
    }
    let msg = match line.get(j) {
        None => &line[j..],
        Some(b' ') => &line[j + 1..],
        _ => return None,
    };
    let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
    let dash = |r: (usize, usize)| -> &[u8] {
        match &line[r.0..r.1] {
            b"-" => &[],
            v => v,
        }
    };
    let esc = if has_octal_escape(msg) { Esc::Octal } else { Esc::No };
    let mut p = parts(line, Envelope::Syslog5424, msg, esc);
    p.u.time = time;
    p.u.host = dash(host);
    p.u.name = dash(app);
    p.u.pid = std::str::from_utf8(dash(procid)).ok().and_then(|s| s.parse().ok());
    p.u.header_len = line.len() - msg.len();
    Some(p)
}

/// rsyslog escapes control characters as `#` and three octal digits (`#012` for a newline,
/// `#011` for a tab); `#` itself is not escaped, so only `#000`..`#037` and `#177` are read
/// as escapes (nginx's `2711#2711` must stay as it is).
pub(super) fn octal_escape(b: &[u8]) -> Option<u8> {
    if b.len() < 4 || b[0] != b'#' || !b[1..4].iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    let v = (b[1] - b'0') as u32 * 64 + (b[2] - b'0') as u32 * 8 + (b[3] - b'0') as u32;
    (v < 0o40 || v == 0o177).then_some(v as u8)
}

pub(super) fn has_octal_escape(msg: &[u8]) -> bool {
    memchr::memchr_iter(b'#', msg).any(|p| octal_escape(&msg[p..]).is_some())
}

pub(super) fn octal_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'#', &raw[i..]) {
        let at = i + p;
        out.extend_from_slice(&raw[i..at]);
        match octal_escape(&raw[at..]) {
            Some(c) => {
                out.push(c);
                i = at + 4;
            }
            None => {
                out.push(b'#');
                i = at + 1;
            }
        }
    }
    out.extend_from_slice(&raw[i..]);
}
