//! The kind of a file, from its first lines: one kind of nginx or FPM log, or a mixed file
//! (several kinds, or records in envelopes), and for access lines the format they fit.
//!
//! Input: the decompressed head of a file (and a way to read more of it), its path and the
//! run's formats. Output: `Sniff`. Invariants: content decides (the name only breaks ties or
//! stands in for files whose lines say nothing); a file is mixed only when its lines carry
//! envelopes or hold more than one kind of record, so a single-kind log keeps the fast path
//! and its malformed lines stay malformed; a mixed file is sniffed deeper (its first lines
//! are often a container's start-up messages).

use super::formats::FormatSet;
use super::rotation::{name_hint, year_month};
use crate::model::{Envelope, LogKind};
use crate::parse::access::{AccessFormat, Var};
use crate::parse::formats::{extra_fields, infer_key_values};
use crate::parse::record::{kind_of, RecordKind};
use crate::parse::{fpm, nginx_error};
use crate::unwrap::{unwrap, EnvTime};
use std::path::Path;

/// Bytes of a file's head sniffed for its kind.
pub const HEAD: usize = 64 << 10;
const SNIFF_LINES: usize = 40;
/// How far a mixed file is sniffed.
pub const DEEP_HEAD: usize = 1 << 20;
const DEEP_LINES: usize = 4000;
/// Of a mixed file's access-like lines, how many the format is chosen on.
const FORMAT_SAMPLE: usize = 500;

pub struct Sniff {
    pub kind: LogKind,
    pub format: Option<usize>,
    pub reason: String,
    /// (UTC seconds, UTC offset) of the access lines sniffed.
    pub offsets: Vec<(i64, i32)>,
    pub envelope: Option<Envelope>,
    /// (year, month, where from) for year-less syslog stamps.
    pub year_ref: Option<(i32, u32, &'static str)>,
    /// Fields after the end of the format on access lines that fit it only as a prefix.
    pub extra_fields: u32,
    /// Mixed files: more formats that some access lines fit.
    pub more_formats: Vec<usize>,
}

fn lines_of(head: &[u8], limit: usize, max: usize) -> Vec<&[u8]> {
    let start = head.iter().take_while(|&&c| c == 0).count();
    let body = &head[start..];
    // Drop the last line if the head cut it.
    let complete = match memchr::memrchr(b'\n', body) {
        Some(i) if body.len() == limit - start => &body[..i],
        _ => body,
    };
    crate::chunk::Lines::new(complete)
        .map(|l| &l[l.iter().take_while(|&&c| c == 0).count()..])
        .filter(|l| !l.is_empty())
        .take(max)
        .collect()
}

/// Score of a format on `lines`: lines it fits whole count double, so a prefix fit
/// (trailing fields) does not let `combined` win over the format the lines were written in.
fn score(f: &AccessFormat, lines: &[&[u8]]) -> usize {
    lines.iter().filter_map(|l| f.fits(l)).map(|t| if t { 1 } else { 2 }).sum::<usize>() / 2
}

/// The best format for `lines`: the assigned one if it fits any, else the best candidate; a
/// format that fits only as a prefix is extended with the `key=value` fields after it when
/// they can be read (`parse::formats`). Returns (format, reason, extra fields).
fn choose_format(
    lines: &[&[u8]],
    fs: &mut FormatSet,
    candidates: &[usize],
    assigned: Option<(usize, &'static str)>,
) -> (Option<(usize, usize)>, Option<String>, u32) {
    let mut best: Option<(usize, usize)> = None;
    if let Some((i, _)) = assigned {
        best = Some((i, score(&fs.formats[i], lines)));
    }
    if best.is_none_or(|(_, s)| s == 0) {
        for &c in candidates {
            let s = score(&fs.formats[c], lines);
            if s > best.map_or(0, |b| b.1) {
                best = Some((c, s));
            }
        }
    }
    let Some((i, s)) = best.filter(|b| b.1 > 0) else { return (best, None, 0) };
    let f = &fs.formats[i];
    let prefix: Vec<&[u8]> = lines.iter().copied().filter(|l| f.fits(l) == Some(true)).collect();
    if prefix.is_empty() || assigned.is_some_and(|a| a.0 == i) {
        return (best, None, 0);
    }
    let extra = extra_fields(f, prefix[0]) as u32;
    match infer_key_values(f, lines) {
        Some(g) => {
            let name = g.name.clone();
            let j = fs.add(g);
            (Some((j, s)), Some(format!("detected (log_format {name}, key=value fields read by key)")), 0)
        }
        None => (best, None, extra),
    }
}

/// Sniff a file. `head`: its first `HEAD` decompressed bytes; `deep`: reads its first
/// `DEEP_HEAD` bytes when a mixed file needs a longer look; `mtime`: (year, month) of its
/// modification time.
pub fn sniff(
    head: &[u8],
    deep: &dyn Fn() -> Vec<u8>,
    path: &Path,
    set: &str,
    fs: &mut FormatSet,
    candidates: &[usize],
    mtime: Option<(i32, u32)>,
) -> Sniff {
    let none = |kind, reason: String| Sniff {
        kind,
        format: None,
        reason,
        offsets: vec![],
        envelope: None,
        year_ref: None,
        extra_fields: 0,
        more_formats: vec![],
    };
    let lines = lines_of(head, HEAD, SNIFF_LINES);
    let hint = name_hint(path);
    let assigned = fs.assigned(path, set);
    // Control bytes inside lines; NUL runs before a line (copytruncate holes) do not count.
    let is_ctrl = |c: &u8| *c < 0x20 && *c != b'\r' && *c != b'\t';
    let ctrl: usize = lines.iter().map(|l| l.iter().filter(|c| is_ctrl(c)).count()).sum();
    let text: usize = lines.iter().map(|l| l.len()).sum();
    // Random binary data has about 11% such bytes; text logs have next to none.
    if text > 0 && ctrl * 20 > text {
        return none(LogKind::Unknown, "binary content".into());
    }
    let n = lines.len();
    let mut scratch = Vec::new();
    let enveloped = lines.iter().filter(|l| unwrap(l, &mut scratch, None).envelope.is_some()).count();
    let err = lines.iter().filter(|l| nginx_error::is_entry_start(l) && nginx_error::parse(l).is_some()).count();
    let fpm_n = lines.iter().filter(|l| fpm::is_stamped(l) && fpm::parse_line(l).is_some()).count();
    let slow = lines
        .iter()
        .filter(|l| {
            fpm::parse_slow_header(l).is_some() || l.starts_with(b"script_filename = ") || l.starts_with(b"[0x")
        })
        .count();
    let php = lines.iter().filter(|l| crate::parse::php_error::parse(l).is_some()).count();
    let (best_fmt, fmt_reason, extra) = choose_format(&lines, fs, candidates, assigned);
    let acc = best_fmt.map_or(0, |b| b.1);
    let scores = [
        (LogKind::NginxAccess, acc),
        (LogKind::NginxError, err),
        (LogKind::FpmSlow, slow),
        (LogKind::FpmMaster, fpm_n),
        (LogKind::PhpError, php),
    ];
    // Several kinds, each a real share of the lines (a slow log's frames are all of one).
    let real = |s: usize| s >= 2 && s * 10 >= n;
    let kinds = [acc, err, fpm_n, php].iter().filter(|s| real(**s)).count();
    if enveloped * 2 > n || kinds >= 2 {
        return sniff_mixed(&deep(), fs, candidates, assigned, mtime);
    }
    let (kind, top) =
        scores.iter().copied().max_by_key(|(k, s)| (*s, Some(*k) == hint)).unwrap_or((LogKind::Unknown, 0));
    let (kind, reason) = if top > 0 {
        (kind, format!("content: {top} of {n} sniffed lines"))
    } else if let Some(h) = hint.filter(|_| n == 0 || assigned.is_some() || head.first() == Some(&0)) {
        (h, "name (no readable lines to sniff)".into())
    } else if let (Some(h), true) = (hint, assigned.is_some()) {
        (h, "name".into())
    } else {
        (LogKind::Unknown, if n == 0 { "empty".into() } else { "no line looks like an nginx or PHP-FPM log".into() })
    };
    if kind != LogKind::NginxAccess {
        return none(kind, reason);
    }
    let f = match (assigned, best_fmt) {
        (Some((i, why)), _) if score(&fs.formats[i], &lines) > 0 || why == "--log-format glob" => (i, why.to_string()),
        (_, Some((i, s))) if s > 0 => {
            (i, fmt_reason.unwrap_or_else(|| format!("detected (log_format {})", fs.formats[i].name)))
        }
        (Some((i, why)), _) => (i, why.to_string()),
        _ => (fs.formats.iter().position(|f| f.name == "combined").unwrap_or(0), "default combined".into()),
    };
    let offsets = offsets(&fs.formats[f.0], &lines);
    Sniff {
        kind,
        format: Some(f.0),
        reason: format!("{reason}; format: {}", f.1),
        offsets,
        envelope: None,
        year_ref: None,
        extra_fields: extra,
        more_formats: vec![],
    }
}

/// (UTC seconds, UTC offset) of the last line in `tail` (a plain file's last bytes; its first,
/// cut line is skipped) that one of `formats` reads as an access line: a daylight-saving change
/// inside one file shows there and not in its first lines. A mixed file's lines (`mixed`: its
/// envelope) are unwrapped first; pieces of split records are passed over.
pub fn last_stamp(
    fs: &FormatSet,
    formats: &[usize],
    mixed: Option<Option<Envelope>>,
    tail: &[u8],
) -> Option<(i64, i32)> {
    let body = &tail[memchr::memchr(b'\n', tail)? + 1..];
    let lines: Vec<&[u8]> = crate::chunk::Lines::new(body).filter(|l| !l.is_empty()).collect();
    let mut scratch = Vec::new();
    for l in lines.iter().rev() {
        let inner = match mixed {
            Some(envelope) => {
                let u = unwrap(l, &mut scratch, envelope);
                if u.partial {
                    continue;
                }
                u.inner.to_vec()
            }
            None => l.to_vec(),
        };
        for f in formats.iter().filter_map(|&f| fs.formats.get(f)) {
            if let Some(&s) = offsets(f, &[&inner[..]]).last() {
                return Some(s);
            }
        }
    }
    None
}

/// (UTC seconds, UTC offset) of the access lines among `lines` (the zone of zone-less stamps
/// is learnt from them: `zone_choice`).
fn offsets(fmt: &AccessFormat, lines: &[&[u8]]) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    for l in lines {
        let mut scratch = Vec::new();
        let mut p = crate::parse::access::AccessLine::default();
        if fmt.parse_with(l, &mut scratch, &mut p) {
            let off = p
                .raw(Var::TimeLocal)
                .and_then(crate::model::time::parse_time_local)
                .or_else(|| p.raw(Var::TimeIso8601).and_then(crate::model::time::parse_iso8601));
            out.extend(off);
        }
    }
    out
}

/// A file whose lines carry envelopes or several kinds of record: its envelope, the kinds
/// in it, the access format of its access lines, and the year of year-less stamps.
fn sniff_mixed(
    head: &[u8],
    fs: &mut FormatSet,
    candidates: &[usize],
    assigned: Option<(usize, &'static str)>,
    mtime: Option<(i32, u32)>,
) -> Sniff {
    let lines = lines_of(head, DEEP_HEAD, DEEP_LINES);
    let mut envs: Vec<(Envelope, usize)> = Vec::new();
    let mut messages: Vec<Vec<u8>> = Vec::with_capacity(lines.len());
    let mut no_year = false;
    let mut scratch = Vec::new();
    // A Docker or CRI piece joins the next line of its stream, as the readers join them.
    let mut pending: Option<(Option<Envelope>, Option<crate::model::Stream>, Vec<u8>)> = None;
    for (k, l) in lines.iter().enumerate() {
        // The envelope most lines so far carry is tried first (its fast path), as the
        // readers do.
        let first = if k < SNIFF_LINES { None } else { envs.iter().max_by_key(|x| x.1).map(|x| x.0) };
        let u = unwrap(l, &mut scratch, first);
        if let Some(e) = u.envelope {
            match envs.iter_mut().find(|x| x.0 == e) {
                Some(x) => x.1 += 1,
                None => envs.push((e, 1)),
            }
        }
        no_year |= matches!(u.time, EnvTime::NoYear(..));
        if let Some((e, s, mut buf)) = pending.take() {
            if u.envelope.is_some() && u.envelope == e && u.stream == s {
                buf.extend_from_slice(u.inner);
                if u.partial {
                    pending = Some((e, s, buf));
                } else {
                    messages.push(buf);
                }
                continue;
            }
            messages.push(buf);
        }
        if u.partial {
            pending = Some((u.envelope, u.stream, u.inner.to_vec()));
        } else {
            messages.push(u.inner.to_vec());
        }
    }
    messages.extend(pending.map(|p| p.2));
    let envelope = envs.iter().max_by_key(|(e, n)| (*n, std::cmp::Reverse(*e))).map(|x| x.0);
    let msgs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
    // Access lines are those no other kind claims.
    let others = |m: &[u8]| kind_of(m, |_| false);
    let access_like: Vec<&[u8]> =
        msgs.iter().copied().filter(|m| matches!(others(m), RecordKind::Other | RecordKind::FpmWorker)).collect();
    // Formats are chosen on an even sample (every candidate format is tried on each line:
    // on all 4,000 lines of 32 container logs that took 0.3 s before the scan began).
    let step = access_like.len().div_ceil(FORMAT_SAMPLE).max(1);
    let access_like: Vec<&[u8]> = access_like.into_iter().step_by(step).collect();
    let (best, fmt_reason, extra) = choose_format(&access_like, fs, candidates, assigned);
    let format = best.filter(|b| b.1 > 0).map(|b| b.0).or(assigned.map(|a| a.0));
    // Lines the first format does not fit whole may be another vhost's format (up to three).
    let mut more_formats: Vec<usize> = Vec::new();
    if let Some(f) = format {
        let mut rest: Vec<&[u8]> =
            access_like.iter().copied().filter(|l| fs.formats[f].fits(l) != Some(false)).collect();
        while !rest.is_empty() && more_formats.len() < 3 {
            let (b, _, _) = choose_format(&rest, fs, candidates, None);
            let Some((g, _)) = b.filter(|b| b.1 > 0 && b.0 != f && !more_formats.contains(&b.0)) else { break };
            more_formats.push(g);
            rest.retain(|l| fs.formats[g].fits(l) != Some(false));
        }
    }
    let fits = |l: &[u8]| format.iter().chain(&more_formats).any(|&f| fs.formats[f].fits(l).is_some());
    let mut counts = [0usize; 4];
    for m in &msgs {
        let k = kind_of(m, |l| fits(l));
        match k {
            RecordKind::Access => counts[0] += 1,
            RecordKind::Error => counts[1] += 1,
            RecordKind::Fpm | RecordKind::FpmSyslog | RecordKind::FpmWorker => counts[2] += 1,
            RecordKind::SlowHeader | RecordKind::PhpError => counts[3] += 1,
            _ => {}
        }
    }
    let env_name = envelope.map_or("no envelope".to_string(), |e| e.to_string());
    if counts.iter().all(|c| *c == 0) {
        return Sniff {
            kind: LogKind::Unknown,
            format: None,
            reason: format!("no nginx or PHP-FPM record among {} lines ({env_name})", lines.len()),
            offsets: vec![],
            envelope: None,
            year_ref: None,
            extra_fields: 0,
            more_formats: vec![],
        };
    }
    let year_ref = no_year.then(|| {
        msgs.iter()
            .find_map(|m| year_month(m))
            .map(|(y, m)| (y, m, "the stamps of the lines inside"))
            .or(mtime.map(|(y, m)| (y, m, "the file's modification time")))
    });
    let offsets = format.map(|f| offsets(&fs.formats[f], &access_like)).unwrap_or_default();
    let mut fmt_text = match (format, fmt_reason) {
        (Some(_), Some(r)) => format!("; format: {r}"),
        (Some(f), None) => format!("; format: {}", fs.formats[f].name),
        (None, _) => String::new(),
    };
    for g in &more_formats {
        fmt_text.push_str(&format!(", and {}", fs.formats[*g].name));
    }
    Sniff {
        kind: LogKind::Mixed,
        format,
        reason: format!(
            "content: mixed ({env_name}; {} access, {} error, {} FPM, {} slow-log or PHP records of {} sniffed lines){fmt_text}",
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            lines.len()
        ),
        offsets,
        envelope,
        year_ref: year_ref.flatten(),
        extra_fields: extra,
        more_formats,
    }
}
