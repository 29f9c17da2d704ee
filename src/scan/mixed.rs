//! The reader of mixed files: records of several kinds, or records in envelopes (a
//! container's stdout and stderr, `/var/log/syslog`, a journal export), in one file.
//!
//! Input: the lines of one chunk of a `LogKind::Mixed` source. Output: the same records the
//! single-kind readers give (`records`), each with its origin (envelope, container or
//! program, stream, host). Invariants: the kind is decided per record, by content; a Docker
//! or CRI piece is joined with the pieces after it of the same stream; a multi-line record
//! (a FastCGI stderr entry, a slow-log block, a PHP error with its stack trace) takes the further lines of its origin until a
//! record starts (`framing::starts`, the same rule the chunk planner cuts at, so a chunked
//! read equals a whole one); other programs' lines are skipped (`FileStats::other`), never
//! malformed; a record without a time of its own takes its envelope's, else that of the
//! record before it.

use super::cursor::{Cursor, MAX_ENTRY_LINES};
use super::framing::{line_info, message, starts, LineInfo};
use crate::model::time::{parse_fpm_wall, parse_nginx_error_wall, wall_ms};
use crate::model::{Envelope, LogSource, Origin, Stream, Ts};
use crate::parse::access::{AccessFormat, AccessLine};
use crate::parse::nginx_error;
use crate::parse::record::{kind_of, RecordKind};
use crate::unwrap::{unwrap, EnvTime, Unwrapped};
use std::sync::Arc;

/// A record whose pieces are still coming (Docker's 16 KiB pieces, CRI `P`).
struct Pending {
    buf: Vec<u8>,
    first: u64,
    lines: u64,
    /// Whether its first piece started a record (decided there, as the planner does).
    start: bool,
    time: Option<Ts>,
    envelope: Option<Envelope>,
    stream: Option<Stream>,
    origin: u64,
    arc: Option<Arc<Origin>>,
}

/// A multi-line record still taking lines.
/// The kinds of multi-line record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    /// An nginx error entry whose FastCGI stderr payload continues.
    Error,
    /// A slow-log block.
    Slow,
    /// A PHP error-log record (an uncaught exception's stack trace follows it).
    Php,
}

struct Open {
    kind: OpenKind,
    /// (line number, text) of its lines.
    lines: Vec<(u64, Vec<u8>)>,
    /// Physical lines (pieces of split records count each).
    count: u64,
    origin: u64,
    arc: Option<Arc<Origin>>,
    /// The envelope time of its first line.
    time: Option<Ts>,
}

pub(super) struct State<'c> {
    /// The file's access formats, in the order they are tried.
    formats: Vec<&'c AccessFormat>,
    /// Docker json-file files: the same formats as their lines read still escaped
    /// (`AccessFormat::json_escaped`), tried on a record before its `log` is decoded.
    escaped: Vec<AccessFormat>,
    /// Per Docker stream (stdout, stderr): its line info, computed once.
    docker_info: [Option<LineInfo>; 2],
    envelope: Option<Envelope>,
    container: Option<String>,
    /// (year, month) of a reference stamp, for year-less syslog stamps.
    year: Option<(i32, u32)>,
    scratch: Vec<u8>,
    prev: Option<LineInfo>,
    pending: Option<Pending>,
    open: Option<Open>,
    /// The last origin seen and its shared value.
    origin: Option<(u64, Arc<Origin>)>,
    /// The last wall-clock second converted to UTC.
    wall: Option<(i64, Ts)>,
}

impl<'c> State<'c> {
    pub(super) fn new(s: &LogSource, formats: &'c [AccessFormat]) -> Self {
        let formats = super::framing::access_formats(s, formats);
        let escaped = match s.envelope {
            Some(Envelope::DockerJson) => formats.iter().filter_map(|f| f.json_escaped()).collect(),
            _ => Vec::new(),
        };
        State {
            escaped,
            docker_info: [None; 2],
            formats,
            envelope: s.envelope,
            container: s.container.clone(),
            year: s.year_ref.map(|(y, m, _)| (y, m)),
            scratch: Vec::new(),
            prev: None,
            pending: None,
            open: None,
            origin: None,
            wall: None,
        }
    }
}

/// Which of `formats` (text formats) reads `line`, `al` holding its split: the first that fits
/// the whole line, else the first that fits it with fields left over. One file can hold
/// formats of which one extends another (`combined` beside `combined` + `$upstream_*` fields:
/// two vhosts' access logs in one syslog or container stream); the first that fits would
/// read the longer lines as the shorter format and drop their upstream fields (a
/// production-shaped corpus wrapped by syslog lost every peer's answers that way, and its
/// sporadic resets were read as FPM rejecting nginx's address).
fn best_fit<'f, 'a>(
    formats: impl Iterator<Item = &'f AccessFormat> + Clone,
    line: &'a [u8],
    al: &mut AccessLine<'a>,
) -> Option<usize> {
    let (mut prefix, mut last) = (None, None);
    for (k, f) in formats.clone().enumerate() {
        *al = AccessLine::default();
        last = Some(k);
        if f.parse_into(line, al) {
            if !al.trailing {
                return Some(k);
            }
            prefix.get_or_insert(k);
        }
    }
    // No format fits the whole line: the first prefix fit, split again unless it was the
    // last tried (a file of one format whose lines carry extra fields: split once).
    let k = prefix?;
    if last == Some(k) {
        return Some(k);
    }
    *al = AccessLine::default();
    formats.clone().nth(k).is_some_and(|f| f.parse_into(line, al)).then_some(k)
}

/// The year of a year-less stamp in `month`, next to a reference (year, month): the stamp is
/// at most six months from it (a log that runs over New Year keeps its order).
pub fn year_of(month: u32, (y, m): (i32, u32)) -> i32 {
    if month > m + 6 {
        y - 1
    } else if month + 6 < m {
        y + 1
    } else {
        y
    }
}

impl Cursor<'_, '_> {
    pub(super) fn mixed_block(&mut self, bytes: &[u8]) {
        let mut st = self.mixed.take().expect("a mixed file has a mixed state");
        for raw in crate::chunk::Lines::new(bytes) {
            self.line += 1;
            self.stats.lines += 1;
            self.mixed_line(&mut st, super::cursor::strip_nuls(raw));
        }
        self.mixed = Some(st);
    }

    /// End of the chunk: what is still open or pending is a record.
    pub(super) fn mixed_finish(&mut self) {
        if let Some(mut st) = self.mixed.take() {
            if let Some(p) = st.pending.take() {
                self.pending_done(&mut st, p);
            }
            self.close_open(&mut st);
        }
    }

    fn env_time(&mut self, st: &mut State<'_>, t: EnvTime) -> Option<Ts> {
        let wall = match t {
            EnvTime::None => return None,
            EnvTime::Utc(t) => return Some(t),
            EnvTime::Wall(w) => w,
            EnvTime::NoYear(mo, d, ms) => wall_ms(year_of(mo, st.year?) as i64, mo, d, ms),
        };
        let (sec, ms) = (wall.div_euclid(1000), wall.rem_euclid(1000));
        let utc = match st.wall {
            Some((s, u)) if s == sec => u,
            _ => {
                let (u, fit) = self.ctx.zone.wall_to_utc(sec);
                self.wall_fit(fit);
                st.wall = Some((sec, u * 1000));
                u * 1000
            }
        };
        Some(utc + ms)
    }

    fn origin_of(&self, st: &mut State, u: &Unwrapped, hash: u64) -> Option<Arc<Origin>> {
        let envelope = u.envelope?;
        if let Some((h, a)) = &st.origin {
            if *h == hash {
                return Some(a.clone());
            }
        }
        let text = |b: &[u8]| (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned());
        let a = Arc::new(Origin {
            envelope,
            name: text(u.name).or_else(|| st.container.clone()),
            stream: u.stream,
            host: text(u.host),
        });
        st.origin = Some((hash, a.clone()));
        Some(a)
    }

    /// An access line in a complete Docker record, split into fields while still escaped
    /// (decoding every `\"` of a line first cost as much as parsing it). False: not one; the
    /// line takes the general path.
    fn docker_access(&mut self, st: &mut State, line: &[u8]) -> bool {
        if st.pending.is_some() || st.escaped.is_empty() {
            return false;
        }
        let Some((stream, raw)) = crate::unwrap::docker_json_raw(line) else { return false };
        let mut json = std::mem::take(&mut self.json);
        let mut al = AccessLine::default();
        let fit = best_fit(st.escaped.iter(), raw, &mut al);
        let fits = fit.is_some_and(|k| st.escaped[k].decode_escapes(raw, &mut json, &mut al));
        if fits {
            // The origin of a Docker record is its stream: hashed once per stream, and the
            // shared origin kept while it does not change (an `Arc` clone and drop per line
            // cost two atomic operations).
            let u = crate::unwrap::docker_unwrapped(line, stream, raw);
            let slot = usize::from(stream == crate::model::Stream::Stderr);
            let info = *st.docker_info[slot].get_or_insert_with(|| line_info(&u, None));
            let same =
                matches!((&st.origin, &self.origin), (Some((h, a)), Some(b)) if *h == info.origin && Arc::ptr_eq(a, b));
            if !same {
                self.origin = self.origin_of(st, &u, info.origin);
            }
            if starts(st.prev.as_ref(), &info, &u, RecordKind::Access) {
                self.close_open(st);
                self.last_ts = None;
            }
            self.env_ts = None;
            if !self.access_fields(&al, self.line, 1) {
                self.malformed(self.line, line);
            }
            st.prev = Some(info);
        }
        self.json = json;
        fits
    }

    fn mixed_line(&mut self, st: &mut State, line: &[u8]) {
        if st.envelope == Some(Envelope::DockerJson) && self.docker_access(st, line) {
            return;
        }
        let no = self.line;
        let mut scratch = std::mem::take(&mut st.scratch);
        let u = unwrap(line, &mut scratch, st.envelope);
        if let Some(mut p) = st.pending.take() {
            if u.envelope.is_some() && u.envelope == p.envelope && u.stream == p.stream {
                p.buf.extend_from_slice(u.inner);
                p.lines += 1;
                st.prev = Some(line_info(&u, st.prev.as_ref()));
                if u.partial {
                    st.pending = Some(p);
                } else {
                    self.pending_done(st, p);
                }
                st.scratch = scratch;
                return;
            }
            // Another stream's line came between: the pieces so far are the record.
            self.pending_done(st, p);
        }
        let info = line_info(&u, st.prev.as_ref());
        let msg = message(&u, st.prev.as_ref());
        let time = self.env_time(st, u.time);
        let arc = self.origin_of(st, &u, info.origin);
        let is_record_file = matches!(st.envelope, Some(Envelope::DockerJson | Envelope::JournalJson | Envelope::Cri));
        if u.partial {
            // Whether it starts a record is decided on its first piece, as the planner does.
            let kind = kind_of(msg, |l| st.formats.iter().any(|f| f.fits(l).is_some()));
            let start = starts(st.prev.as_ref(), &info, &u, kind);
            st.pending = Some(Pending {
                buf: msg.to_vec(),
                first: no,
                lines: 1,
                start,
                time,
                envelope: u.envelope,
                stream: u.stream,
                origin: info.origin,
                arc,
            });
        } else if u.envelope.is_none() && is_record_file && !line.is_empty() && u.indented == 0 {
            // A line of a Docker, CRI or journal export file that is no record of it.
            self.malformed(no, line);
        } else {
            let prev = st.prev;
            let at = Place { first: no, lines: 1, time, origin: info.origin, arc };
            self.mixed_record(st, msg, at, |kind| starts(prev.as_ref(), &info, &u, kind));
        }
        st.prev = Some(info);
        st.scratch = scratch;
    }

    fn pending_done(&mut self, st: &mut State, p: Pending) {
        let start = p.start;
        let at = Place { first: p.first, lines: p.lines, time: p.time, origin: p.origin, arc: p.arc };
        self.mixed_record(st, &p.buf, at, |_| start);
    }

    /// One whole record of a mixed file; `starts(kind)` says whether it starts a record.
    fn mixed_record(&mut self, st: &mut State, msg: &[u8], at: Place, starts: impl FnOnce(RecordKind) -> bool) {
        let mut json = std::mem::take(&mut self.json);
        let mut al = AccessLine::default();
        // The file's formats in order (a JSON one last: it needs the scratch buffer).
        let json_format = st.formats.iter().find(|f| f.is_json());
        let mut access = best_fit(st.formats.iter().copied().filter(|f| !f.is_json()), msg, &mut al).is_some();
        if let (false, Some(f)) = (access, json_format) {
            al = AccessLine::default();
            access = f.parse_with(msg, &mut json, &mut al);
        }
        let kind = kind_of(msg, |_| access);
        let start = starts(kind);
        if start {
            self.close_open(st);
            // What "the record before" means for a line without a time must not reach back
            // over a record start (a chunk may begin there).
            self.last_ts = None;
        }
        let opens = match kind {
            RecordKind::Error => nginx_error::opens_continuation(msg),
            RecordKind::SlowHeader | RecordKind::PhpError => true,
            _ => false,
        };
        if !start && opens {
            // A record that opens a multi-line one where no record start was seen (its line
            // came after a piece of a split record that was not continued): the record still
            // open is complete all the same, or its lines would go uncounted.
            self.close_open(st);
        }
        self.origin = at.arc.clone();
        self.env_ts = at.time;
        match kind {
            RecordKind::Access => {
                if !self.access_fields(&al, at.first, at.lines) {
                    self.stats.malformed += at.lines - 1;
                    self.malformed(at.first, msg);
                }
            }
            RecordKind::Error => {
                if nginx_error::opens_continuation(msg) {
                    // Read when complete; its time counts from now.
                    self.last_ts = self.clock.get(&msg[..19], parse_nginx_error_wall).map(|t| t.0).or(self.last_ts);
                    st.open = Some(Open {
                        kind: OpenKind::Error,
                        lines: vec![(at.first, msg.to_vec())],
                        count: at.lines,
                        origin: at.origin,
                        arc: at.arc.clone(),
                        time: at.time,
                    });
                } else {
                    self.error_record(msg, at.first, at.lines);
                }
            }
            RecordKind::SlowHeader => {
                self.last_ts =
                    self.clock.get(&msg[1..21], parse_fpm_wall).map(|t| t.0 - self.ctx.fpm_clock_ms).or(self.last_ts);
                st.open = Some(Open {
                    kind: OpenKind::Slow,
                    lines: vec![(at.first, msg.to_vec())],
                    count: at.lines,
                    origin: at.origin,
                    arc: at.arc.clone(),
                    time: at.time,
                });
            }
            RecordKind::PhpError => {
                self.last_ts = crate::parse::php_error::parse(msg).and_then(|p| self.php_ts(&p)).or(self.last_ts);
                st.open = Some(Open {
                    kind: OpenKind::Php,
                    lines: vec![(at.first, msg.to_vec())],
                    count: at.lines,
                    origin: at.origin,
                    arc: at.arc.clone(),
                    time: at.time,
                });
            }
            _ => self.continuation(st, msg, kind, &at),
        }
        self.json = json;
        self.env_ts = None;
        if let Some(t) = at.time {
            self.last_ts = Some(t);
        }
    }

    /// A line that starts no record: a further line of the open record of its origin, or a
    /// line of its own.
    fn continuation(&mut self, st: &mut State, msg: &[u8], kind: RecordKind, at: &Place) {
        if let Some(o) = st.open.as_mut().filter(|o| o.origin == at.origin) {
            let slow = o.kind == OpenKind::Slow;
            let takes =
                if slow { matches!(kind, RecordKind::SlowBody | RecordKind::Blank) } else { o.count < MAX_ENTRY_LINES };
            if takes {
                if slow && kind == RecordKind::Blank {
                    // FPM ends every block with a blank line (counted as skipped, as in a
                    // slow log of its own).
                    self.stats.skipped += at.lines;
                    self.close_open(st);
                    return;
                }
                o.count += at.lines;
                o.lines.push((at.first, msg.to_vec()));
                if o.kind == OpenKind::Error && nginx_error::has_context(msg) {
                    self.close_open(st);
                }
                return;
            }
            if slow {
                self.close_open(st);
            }
        }
        match kind {
            RecordKind::Fpm | RecordKind::FpmSyslog | RecordKind::FpmWorker => {
                let borrowed = at.time.map(|t| (t, true)).or_else(|| self.last_ts.map(|t| (t, false)));
                self.fpm_record(msg, at.first, at.lines, borrowed);
            }
            RecordKind::SlowBody => {
                self.stats.malformed += at.lines - 1;
                self.malformed(at.first, msg);
            }
            RecordKind::Blank => self.stats.skipped += at.lines,
            _ => {
                // Another program's line, or a line of no log kind upcause reads.
                self.stats.skipped += at.lines;
                self.stats.other += at.lines;
            }
        }
    }

    /// The open multi-line record is complete.
    fn close_open(&mut self, st: &mut State) {
        let Some(o) = st.open.take() else { return };
        let saved = std::mem::replace(&mut self.origin, o.arc.clone());
        let saved_ts = std::mem::replace(&mut self.env_ts, o.time);
        let extra = o.count - o.lines.len() as u64;
        match o.kind {
            OpenKind::Slow => {
                let mut block: Vec<(u64, &[u8])> = o.lines.iter().map(|(n, l)| (*n, &l[..])).collect();
                self.stats.parsed += extra;
                self.slow_flush(&mut block);
            }
            OpenKind::Error | OpenKind::Php => {
                let text = o.lines.iter().map(|(_, l)| &l[..]).collect::<Vec<_>>().join(&b'\n');
                if o.kind == OpenKind::Php {
                    self.php_record(&text, o.lines[0].0, o.count);
                } else {
                    self.error_record(&text, o.lines[0].0, o.count);
                }
            }
        }
        self.origin = saved;
        self.env_ts = saved_ts;
    }
}

/// Where a record is and what its envelope said.
struct Place {
    first: u64,
    lines: u64,
    time: Option<Ts>,
    origin: u64,
    arc: Option<Arc<Origin>>,
}
