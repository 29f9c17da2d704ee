//! Time: the instant type `Ts`, the analysis zone, and fixed-position timestamp parsers.
//!
//! Input: raw timestamp bytes as nginx and PHP-FPM write them. Output: `Ts`, milliseconds
//! since the Unix epoch in UTC. Invariants: parsers never allocate and never panic on any
//! input (they return `None`); zone-less timestamps (nginx error log, FPM) are interpreted in
//! the analysis `Zone`; each parser keeps a one-entry cache of the last second it converted,
//! because logs are written in time order and thousands of lines share a second.

use chrono::{LocalResult, NaiveDate, Offset, TimeZone};
use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Ts = i64;

const MS: i64 = 1000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
/// Pure integer arithmetic: no table, no failure for any input.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of `days_from_civil`: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds since the epoch of a wall-clock time read as if it were UTC.
fn wall_secs(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64
}

#[inline]
fn digits<const N: usize>(b: &[u8]) -> Option<u32> {
    if b.len() < N {
        return None;
    }
    let mut v = 0u32;
    for &c in &b[..N] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u32;
    }
    Some(v)
}

/// `Jan`..`Dec` (English, C locale) to 1..12.
pub fn month_abbr(b: &[u8]) -> Option<u32> {
    Some(match b.get(..3)? {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

fn valid(mo: u32, d: u32, h: u32, mi: u32, s: u32) -> bool {
    (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 61
}

/// nginx error log `YYYY/MM/DD HH:MM:SS` (19 bytes) as wall-clock seconds.
pub fn parse_nginx_error_wall(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || b[4] != b'/' || b[7] != b'/' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits::<4>(b)?, digits::<2>(&b[5..])?, digits::<2>(&b[8..])?);
    let (h, mi, s) = (digits::<2>(&b[11..])?, digits::<2>(&b[14..])?, digits::<2>(&b[17..])?);
    valid(mo, d, h, mi, s).then(|| wall_secs(y as i64, mo, d, h, mi, s))
}

/// FPM `DD-Mon-YYYY HH:MM:SS` (20 bytes, inside the brackets) as wall-clock seconds.
pub fn parse_fpm_wall(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[2] != b'-' || b[6] != b'-' || b[11] != b' ' || b[14] != b':' || b[17] != b':' {
        return None;
    }
    let d = digits::<2>(b)?;
    let mo = month_abbr(&b[3..6])?;
    let y = digits::<4>(&b[7..])?;
    let (h, mi, s) = (digits::<2>(&b[12..])?, digits::<2>(&b[15..])?, digits::<2>(&b[18..])?);
    valid(mo, d, h, mi, s).then(|| wall_secs(y as i64, mo, d, h, mi, s))
}

/// Parse `+HHMM`, `-HHMM`, `+HH:MM`, `Z` into seconds east of UTC.
pub fn parse_offset(b: &[u8]) -> Option<i32> {
    match b {
        [b'Z', ..] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let h = digits::<2>(rest)?;
            let rest = &rest[2..];
            let rest = rest.strip_prefix(b":").unwrap_or(rest);
            let m = digits::<2>(rest)?;
            if h > 23 || m > 59 {
                return None;
            }
            let v = (h * 3600 + m * 60) as i32;
            Some(if *sign == b'-' { -v } else { v })
        }
        _ => None,
    }
}

/// nginx `$time_local`: `22/Nov/2026:03:41:07 +0100` (26 bytes) as (UTC seconds, offset).
pub fn parse_time_local(b: &[u8]) -> Option<(i64, i32)> {
    if b.len() < 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let d = digits::<2>(b)?;
    let mo = month_abbr(&b[3..6])?;
    let y = digits::<4>(&b[7..])?;
    let (h, mi, s) = (digits::<2>(&b[12..])?, digits::<2>(&b[15..])?, digits::<2>(&b[18..])?);
    if !valid(mo, d, h, mi, s) {
        return None;
    }
    let off = parse_offset(&b[21..26])?;
    Some((wall_secs(y as i64, mo, d, h, mi, s) - off as i64, off))
}

/// nginx `$time_iso8601`: `2026-11-22T03:41:07+01:00` (25 bytes) as (UTC seconds, offset).
pub fn parse_iso8601(b: &[u8]) -> Option<(i64, i32)> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let (y, mo, d) = (digits::<4>(b)?, digits::<2>(&b[5..])?, digits::<2>(&b[8..])?);
    let (h, mi, s) = (digits::<2>(&b[11..])?, digits::<2>(&b[14..])?, digits::<2>(&b[17..])?);
    if b[13] != b':' || b[16] != b':' || !valid(mo, d, h, mi, s) {
        return None;
    }
    let mut rest = &b[19..];
    // Optional fraction (not written by nginx, but by log shippers that rewrite the line).
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + n..];
    }
    let off = parse_offset(rest)?;
    Some((wall_secs(y as i64, mo, d, h, mi, s) - off as i64, off))
}

/// An RFC 3339 / ISO 8601 stamp at the start of `b`: `2026-11-22T03:14:42`, an optional
/// fraction of any length (milliseconds kept), an optional offset (`Z`, `+01:00`, `+0100`).
/// Returns (wall-clock milliseconds read as UTC, the offset if any, bytes consumed).
pub fn iso_prefix(b: &[u8]) -> Option<(Ts, Option<i32>, usize)> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' {
        return None;
    }
    let (y, mo, d) = (digits::<4>(b)?, digits::<2>(&b[5..])?, digits::<2>(&b[8..])?);
    let (h, mi, s) = (digits::<2>(&b[11..])?, digits::<2>(&b[14..])?, digits::<2>(&b[17..])?);
    if b[16] != b':' || !valid(mo, d, h, mi, s) {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for k in 0..3 {
            ms = ms * 10 + b.get(i + 1 + k).filter(|_| k < n).map_or(0, |c| (c - b'0') as i64);
        }
        i += 1 + n;
    }
    let off = match b.get(i) {
        Some(b'Z') => {
            i += 1;
            Some(0)
        }
        Some(b'+' | b'-') => {
            let o = parse_offset(&b[i..])?;
            i += if b.get(i + 3) == Some(&b':') { 6 } else { 5 };
            Some(o)
        }
        _ => None,
    };
    Some((wall_secs(y as i64, mo, d, h, mi, s) * MS + ms, off, i))
}

/// A BSD syslog stamp at the start of `b`: `Nov 22 04:14:42` (day padded with a space or a
/// zero), with an optional fraction (`journalctl -o short-precise`). No year: returns (month,
/// day, wall-clock milliseconds of the day, bytes consumed).
pub fn bsd_prefix(b: &[u8]) -> Option<(u32, u32, i64, usize)> {
    if b.len() < 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let mo = month_abbr(b)?;
    let d = match (b[4], b[5]) {
        (b' ', c) => digits::<1>(&[c])?,
        _ => digits::<2>(&b[4..])?,
    };
    let (h, mi, s) = (digits::<2>(&b[7..])?, digits::<2>(&b[10..])?, digits::<2>(&b[13..])?);
    if !valid(mo, d, h, mi, s) {
        return None;
    }
    let mut i = 15;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        for k in 0..3 {
            ms = ms * 10 + b.get(i + 1 + k).filter(|_| k < n).map_or(0, |c| (c - b'0') as i64);
        }
        i += 1 + n;
    }
    Some((mo, d, (h * 3600 + mi * 60 + s) as i64 * MS + ms, i))
}

/// Wall-clock milliseconds (read as UTC) of a date and a time of day.
pub fn wall_ms(y: i64, mo: u32, d: u32, ms_of_day: i64) -> Ts {
    days_from_civil(y, mo, d) * 86_400 * MS + ms_of_day
}

/// nginx `$msec`: `1700000000.123` as milliseconds.
pub fn parse_msec(b: &[u8]) -> Option<Ts> {
    let dot = memchr::memchr(b'.', b).unwrap_or(b.len());
    if dot == 0 || dot > 12 {
        return None;
    }
    let mut secs = 0i64;
    for &c in &b[..dot] {
        if !c.is_ascii_digit() {
            return None;
        }
        secs = secs * 10 + (c - b'0') as i64;
    }
    let mut ms = 0i64;
    let frac = b.get(dot + 1..).unwrap_or(&[]);
    for i in 0..3 {
        let c = frac.get(i).copied().unwrap_or(b'0');
        if !c.is_ascii_digit() {
            return None;
        }
        ms = ms * 10 + (c - b'0') as i64;
    }
    Some(secs * MS + ms)
}

/// The zone zone-less timestamps are read in, and in which output times are shown.
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    /// Fixed offset, seconds east of UTC.
    Fixed(i32),
    /// An IANA zone (daylight saving rules applied per instant).
    Named(chrono_tz::Tz),
    /// The machine's zone (chrono's `Local`).
    Local,
}

/// How a wall-clock time mapped onto the zone's instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WallFit {
    Exact,
    /// Repeated hour (daylight saving ends): the earlier instant, or the later one when the
    /// log had already passed the earlier (see [`WallClock`]).
    Ambiguous,
    /// Skipped hour (daylight saving starts): read with the offset before the gap.
    Gap,
}

impl Zone {
    /// `UTC`, `Z`, `+01:00`, `-0500`, `local` or an IANA name such as `Europe/Berlin`.
    pub fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(Zone::Fixed(0));
        }
        if t.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if t.starts_with('+') || t.starts_with('-') {
            return parse_offset(t.as_bytes())
                .filter(|_| t.len() == 5 || t.len() == 6)
                .map(Zone::Fixed)
                .ok_or_else(|| format!("invalid offset {t:?}: expected +HH:MM or -HHMM"));
        }
        t.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| format!("unknown time zone {t:?}: expected an IANA name (Europe/Berlin), UTC or +HH:MM"))
    }

    /// Wall-clock seconds in this zone to UTC seconds.
    pub fn wall_to_utc(&self, wall: i64) -> (i64, WallFit) {
        let (utc, fit, _) = self.wall_to_utc_both(wall);
        (utc, fit)
    }

    /// Like [`Zone::wall_to_utc`], with the later instant of a repeated hour as a third value
    /// (equal to the first when the stamp is not ambiguous).
    pub fn wall_to_utc_both(&self, wall: i64) -> (i64, WallFit, i64) {
        match self {
            Zone::Fixed(off) => (wall - *off as i64, WallFit::Exact, wall - *off as i64),
            Zone::Named(tz) => resolve(tz, wall),
            Zone::Local => resolve(&chrono::Local, wall),
        }
    }

    /// Offset (seconds east) in effect at a UTC instant.
    pub fn offset_at(&self, utc_secs: i64) -> i32 {
        let Some(dt) = chrono::DateTime::from_timestamp(utc_secs, 0) else {
            return 0;
        };
        match self {
            Zone::Fixed(off) => *off,
            Zone::Named(tz) => tz.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc(),
            Zone::Local => chrono::Local.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc(),
        }
    }
}

fn resolve<Z: TimeZone>(tz: &Z, wall: i64) -> (i64, WallFit, i64) {
    let days = wall.div_euclid(86_400);
    let sod = wall.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let naive =
        NaiveDate::from_ymd_opt(y as i32, m, d).and_then(|date| date.and_hms_opt(sod / 3600, sod / 60 % 60, sod % 60));
    let Some(naive) = naive else {
        return (wall, WallFit::Exact, wall);
    };
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => (t.timestamp(), WallFit::Exact, t.timestamp()),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.timestamp().min(b.timestamp()), a.timestamp().max(b.timestamp()));
            (a, WallFit::Ambiguous, b)
        }
        LocalResult::None => {
            // In the spring-forward gap: use the offset in effect just before it.
            let before = tz.offset_from_utc_datetime(&(naive - chrono::Duration::hours(3)));
            let t = wall - before.fix().local_minus_utc() as i64;
            (t, WallFit::Gap, t)
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Fixed(off) => f.write_str(&format_offset(*off)),
            Zone::Named(tz) => f.write_str(tz.name()),
            Zone::Local => f.write_str("local"),
        }
    }
}

/// `+01:00` style.
pub fn format_offset(off: i32) -> String {
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}

/// RFC 3339 in the given zone: `2026-11-22T03:41:07+01:00`, with `.mmm` when the instant has
/// a sub-second part.
pub fn format_rfc3339(ts: Ts, zone: &Zone) -> String {
    StampText::default().format(ts, zone)
}

/// `format_rfc3339` for stamps that come in time order (the rows of a table): the text of the
/// last second is kept, so the next stamp of the same second costs a copy and three digits,
/// not a zone lookup and a calendar conversion; the offset's text is kept while the offset
/// stays the same.
#[derive(Default)]
pub struct StampText {
    /// (second, `YYYY-MM-DDTHH:MM:SS`) of the last stamp.
    last: Option<(i64, String)>,
    /// The offset of the last stamp and its text (`Z`, `+01:00`).
    off: Option<(i32, String)>,
}

impl StampText {
    /// The text of `ts` in `zone` (the same zone on every call).
    pub fn format(&mut self, ts: Ts, zone: &Zone) -> String {
        let mut s = String::with_capacity(32);
        self.push(ts, zone, &mut s);
        s
    }

    /// Append the text of `ts` in `zone` to `s` (`format` without a new string).
    pub fn push(&mut self, ts: Ts, zone: &Zone, s: &mut String) {
        let secs = ts.div_euclid(MS);
        let ms = ts.rem_euclid(MS) as u32;
        let last = self.last.get_or_insert_with(|| (secs.wrapping_add(1), String::new()));
        if last.0 != secs {
            // Most rows of a noisy log fall in a second of their own: the text is written
            // as bytes into a fixed buffer, and the offset's text only when the offset
            // changes (a `format!` of the offset and a character at a time into the string
            // were 800 instructions a new second, callgrind, the rows of `events.parquet`).
            let off = zone.offset_at(secs);
            let wall = secs + off as i64;
            let (y, mo, d) = civil_from_days(wall.div_euclid(86_400));
            let sod = wall.rem_euclid(86_400) as u32;
            let head = &mut last.1;
            head.clear();
            let mut b = *b"0000-00-00T00:00:00";
            put_digits(&mut b[5..7], mo);
            put_digits(&mut b[8..10], d);
            put_digits(&mut b[11..13], sod / 3600);
            put_digits(&mut b[14..16], sod / 60 % 60);
            put_digits(&mut b[17..19], sod % 60);
            let rest = if (0..=9999).contains(&y) {
                put_digits(&mut b[0..4], y as u32);
                &b[..]
            } else {
                head.push_str(&format!("{y:04}"));
                &b[4..]
            };
            head.push_str(std::str::from_utf8(rest).unwrap_or_default());
            if self.off.as_ref().is_none_or(|o| o.0 != off) {
                let text =
                    if off == 0 && matches!(zone, Zone::Fixed(0)) { "Z".to_string() } else { format_offset(off) };
                self.off = Some((off, text));
            }
            last.0 = secs;
        }
        s.push_str(&last.1);
        if ms != 0 {
            let mut b = *b".000";
            put_digits(&mut b[1..], ms);
            s.push_str(std::str::from_utf8(&b).unwrap_or_default());
        }
        if let Some((_, text)) = &self.off {
            s.push_str(text);
        }
    }
}

/// `v` in the decimal digits of `out`, zero-padded (`v` < 10^len).
fn put_digits(out: &mut [u8], mut v: u32) {
    for c in out.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Parse an RFC 3339 instant or a wall-clock `YYYY-MM-DD[ T]HH:MM[:SS]` in `zone`
/// (for `--since`, `--until`, `--window-*`).
pub fn parse_user_time(s: &str, zone: &Zone) -> Option<Ts> {
    let t = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            let wall = n.and_utc().timestamp();
            return Some(zone.wall_to_utc(wall).0 * MS);
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().map(|d| {
        let wall = d.and_hms_opt(0, 0, 0).map(|n| n.and_utc().timestamp()).unwrap_or(0);
        zone.wall_to_utc(wall).0 * MS
    })
}

/// One-entry cache for zone-less wall-clock stamps: the last key and its instant.
/// Logs are in time order, so the key repeats for every line of a second.
///
/// It also settles the repeated hour when daylight saving ends: a stamp such as `02:10` on
/// that night names two instants an hour apart. The earlier is taken unless the log has
/// already passed it by more than [`DST_REWIND_MS`] (it was at `02:59` of the first pass and
/// now says `02:10`: that is the second pass). A chunk that starts inside the second pass has
/// no earlier line to go by and reads its first stamps as the first pass; the diagnostic
/// counts every ambiguous stamp so the reader knows.
pub struct WallClock<'z> {
    zone: &'z Zone,
    key: [u8; 20],
    key_len: usize,
    value: (Ts, WallFit),
    /// The last instant handed out, for the repeated-hour rule.
    prev: Option<Ts>,
}

/// How far behind the previous line an ambiguous stamp's first reading may fall before the
/// second reading is taken. Lines of one log are stamped in order, give or take a few
/// seconds of interleaving between workers.
pub const DST_REWIND_MS: Ts = 10 * 60 * MS;

impl<'z> WallClock<'z> {
    pub fn new(zone: &'z Zone) -> Self {
        WallClock { zone, key: [0; 20], key_len: usize::MAX, value: (0, WallFit::Exact), prev: None }
    }

    /// Convert `key` (the raw stamp bytes, at most 20) using `parse` on a cache miss.
    #[inline]
    pub fn get(&mut self, key: &[u8], parse: fn(&[u8]) -> Option<i64>) -> Option<(Ts, WallFit)> {
        if key.len() == self.key_len && key == &self.key[..self.key_len] {
            return Some(self.value);
        }
        let wall = parse(key)?;
        let (first, fit, second) = self.zone.wall_to_utc_both(wall);
        let utc = match self.prev {
            Some(p) if fit == WallFit::Ambiguous && p > first * MS + DST_REWIND_MS => second,
            _ => first,
        };
        let n = key.len().min(20);
        self.key[..n].copy_from_slice(&key[..n]);
        self.key_len = n;
        self.value = (utc * MS, fit);
        self.prev = Some(utc * MS);
        Some(self.value)
    }
}

/// One-entry cache for stamps that carry their own offset (`$time_local`), by minute: a stamp
/// that differs from the last one read only in its seconds digits is the cached minute plus
/// its seconds, without the date arithmetic of a full parse (300 instructions). A log of a
/// few lines a second changes its second on most lines: 2.7% of the instructions on the
/// 256 MB noisy bench corpus (three lines a second); little at 2 GiB (twelve per file).
#[derive(Default)]
pub struct OffsetClock {
    /// The last stamp read in full; its seconds digits (18..20) are not compared.
    key: [u8; 26],
    valid: bool,
    /// The start of `key`'s minute (ms) and its offset.
    minute: (Ts, i32),
}

impl OffsetClock {
    #[inline]
    pub fn time_local(&mut self, b: &[u8]) -> Option<(Ts, i32)> {
        if b.len() != 26 {
            return None;
        }
        if !(self.valid && b[..18] == self.key[..18] && b[20..] == self.key[20..]) {
            let (secs, off) = parse_time_local(b)?;
            let s = digits::<2>(&b[18..])? as i64;
            self.key.copy_from_slice(b);
            self.valid = true;
            self.minute = ((secs - s) * MS, off);
        }
        // The same checks as `parse_time_local`'s on the seconds: two digits, under 61.
        let s = digits::<2>(&b[18..]).filter(|&s| s < 61)?;
        Some((self.minute.0 + s as i64 * MS, self.minute.1))
    }
}

#[cfg(test)]
#[path = "time_tests.rs"]
mod tests;
