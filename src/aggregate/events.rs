//! The events table of a fresh analysis: one row per failing request, per nginx error-log
//! entry and per FPM event, with the columns of `EVENT_COLUMNS`.
//!
//! Input: an `Analysis` (scan rows and their verdicts). Output: a polars `DataFrame` sorted by
//! time, file and line. Invariants: every row has every column (null where a record kind has
//! no such field); batches are built in parallel but stacked in input order and then sorted
//! with a stable sort, so the frame is the same whatever the thread count.

use super::run::EVENT_COLUMNS;
use crate::correlate::Evid;
use crate::model::time::format_rfc3339;
use crate::model::Ts;
use crate::Analysis;
use polars::prelude::*;

/// Column-wise accumulation of event rows of all three kinds.
#[derive(Default)]
struct EventCols {
    s: rustc_hash::FxHashMap<&'static str, Vec<Option<String>>>,
    i: rustc_hash::FxHashMap<&'static str, Vec<Option<i64>>>,
    f: rustc_hash::FxHashMap<&'static str, Vec<Option<f64>>>,
    b: rustc_hash::FxHashMap<&'static str, Vec<Option<bool>>>,
    n: usize,
}

const STR_COLS: &[&str] = &[
    "record",
    "machine",
    "time",
    "file",
    "cause_class",
    "cause",
    "confidence",
    "evidence",
    "first_evidence",
    "detail",
    "method",
    "uri",
    "client",
    "vhost",
    "upstream_addr",
    "upstream_status",
    "outcome",
    "proximate",
    "user_agent",
    "level",
    "signature",
    "phase",
    "line_class",
    "server",
    "request",
    "upstream",
    "referrer",
    "message",
    "pool",
    "event",
    "script",
];
const INT_COLS: &[&str] = &[
    "ts_ms",
    "line",
    "first_evidence_ms",
    "status",
    "pid",
    "conn",
    "errno",
    "entry_lines",
    "child_pid",
    "signal",
    "exit_code",
];
const F64_COLS: &[&str] =
    &["request_time", "upstream_response_time", "upstream_connect_time", "upstream_header_time", "elapsed_s"];
const BOOL_COLS: &[&str] = &["failure", "time_exact"];

impl EventCols {
    fn row(&mut self) {
        self.n += 1;
        for c in STR_COLS {
            self.s.entry(c).or_default().push(None);
        }
        for c in INT_COLS {
            self.i.entry(c).or_default().push(None);
        }
        for c in F64_COLS {
            self.f.entry(c).or_default().push(None);
        }
        for c in BOOL_COLS {
            self.b.entry(c).or_default().push(None);
        }
    }
    fn s(&mut self, c: &'static str, v: impl Into<Option<String>>) {
        *self.s.get_mut(c).and_then(|v| v.last_mut()).expect("column") = v.into();
    }
    fn i(&mut self, c: &'static str, v: Option<i64>) {
        *self.i.get_mut(c).and_then(|v| v.last_mut()).expect("column") = v;
    }
    fn f(&mut self, c: &'static str, v: Option<f64>) {
        *self.f.get_mut(c).and_then(|v| v.last_mut()).expect("column") = v;
    }
    fn b(&mut self, c: &'static str, v: bool) {
        *self.b.get_mut(c).and_then(|v| v.last_mut()).expect("column") = Some(v);
    }
    fn frame(mut self) -> PolarsResult<DataFrame> {
        let mut cols = Vec::new();
        for name in EVENT_COLUMNS {
            let c = if *name == "ts" {
                Column::new("ts".into(), self.i.get("ts_ms").cloned().unwrap_or_default())
                    .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
            } else if STR_COLS.contains(name) {
                Column::new((*name).into(), self.s.remove(name).unwrap_or_default())
            } else if INT_COLS.contains(name) {
                Column::new((*name).into(), self.i.remove(name).unwrap_or_default())
            } else if F64_COLS.contains(name) {
                Column::new((*name).into(), self.f.remove(name).unwrap_or_default())
            } else {
                Column::new((*name).into(), self.b.remove(name).unwrap_or_default())
            };
            cols.push(c);
        }
        DataFrame::new(self.n, cols)
    }
}

fn evidence_text(a: &Analysis, ev: &[Evid]) -> (String, Option<(Ts, String)>) {
    let mut v: Vec<&Evid> = ev.iter().collect();
    v.sort_by_key(|e| (e.ts, a.sources.get(e.source as usize).map(|s| s.display.as_str()), e.line));
    v.dedup();
    let name =
        |e: &Evid| format!("{}:{}", a.sources.get(e.source as usize).map(|s| s.display.as_str()).unwrap_or(""), e.line);
    let text = v.iter().map(|e| name(e)).collect::<Vec<_>>().join(" ");
    (text, v.first().map(|e| (e.ts, name(e))))
}

/// One row of the events table: a failing request, an error-log entry or an FPM event
/// (indices into the scan's vectors).
#[derive(Clone, Copy)]
enum Rec {
    Request(usize),
    Error(usize),
    Fpm(usize),
}

/// Rows per batch of the events table: batches are built in parallel and stacked, which also
/// bounds the row-wise staging copy to two batches at a time.
const EVENT_BATCH: usize = 8192;

/// The events table of a fresh analysis.
pub fn events_frame(a: &Analysis, machine: &str) -> PolarsResult<DataFrame> {
    use rayon::prelude::*;
    let mut recs: Vec<Rec> = (0..a.scan.requests.len())
        .map(Rec::Request)
        .chain((0..a.scan.errors.len()).map(Rec::Error))
        .chain((0..a.scan.fpm.len()).map(Rec::Fpm))
        .collect();
    // Documented order: time, then file, then line, then record kind; ties keep this input
    // order (stable sort). Ordering the row indices here, rather than sorting the finished
    // frame, spares polars' gather of every column: a second copy of the table at the peak.
    let file = |s: u32| a.sources.get(s as usize).map(|x| x.display.as_str());
    let key = |r: &Rec| -> (Ts, Option<&str>, u64, &'static str) {
        match *r {
            Rec::Request(i) => {
                let x = &a.scan.requests[i];
                (x.ts, file(x.source), x.line, "request")
            }
            Rec::Error(i) => {
                let x = &a.scan.errors[i];
                (x.ts, file(x.source), x.line, "error")
            }
            Rec::Fpm(i) => {
                let x = &a.scan.fpm[i];
                (x.ts, file(x.source), x.line, "fpm")
            }
        }
    };
    recs.sort_by(|x, y| key(x).cmp(&key(y)));
    let frames = recs
        .par_chunks(EVENT_BATCH)
        .map(|batch| {
            let mut c = EventCols::default();
            for r in batch {
                push_record(&mut c, a, machine, *r);
            }
            c.frame()
        })
        .collect::<PolarsResult<Vec<DataFrame>>>()?;
    let mut frames = frames.into_iter();
    let mut df = match frames.next() {
        Some(f) => f,
        None => EventCols::default().frame()?,
    };
    for f in frames {
        df.vstack_mut_owned(f)?;
    }
    // One chunk per column now, while nothing else is alive: every later filter and writer
    // would otherwise concatenate the batches again, each into its own copy.
    df.rechunk_mut_par();
    Ok(df)
}

/// The verdict's confidence, evidence and detail (requests and upstream error lines alike).
fn verdict_cols(c: &mut EventCols, a: &Analysis, v: &crate::correlate::Verdict) {
    c.s("confidence", Some(v.confidence.as_str().into()));
    let (text, first) = evidence_text(a, &v.evidence);
    c.s("evidence", Some(text));
    c.i("first_evidence_ms", first.as_ref().map(|f| f.0));
    c.s("first_evidence", first.map(|f| f.1));
    c.s("detail", Some(v.detail.clone()));
}

fn push_record(c: &mut EventCols, a: &Analysis, machine: &str, rec: Rec) {
    let z = &a.zone.zone;
    let file = |s: u32| a.sources.get(s as usize).map(|x| x.display.clone());
    let common = |c: &mut EventCols, rec: &str, ts: Ts, src: u32, line: u64| {
        c.row();
        c.s("record", Some(rec.to_string()));
        c.s("machine", Some(machine.to_string()));
        c.i("ts_ms", Some(ts));
        c.s("time", Some(format_rfc3339(ts, z)));
        c.s("file", file(src));
        c.i("line", Some(line as i64));
    };
    match rec {
        Rec::Request(i) => {
            let (r, t) = (&a.scan.requests[i], &a.corr.requests[i]);
            common(c, "request", r.ts, r.source, r.line);
            let v = &t.verdict;
            c.s("cause_class", Some(v.class.as_str().into()));
            c.s("cause", Some(v.cause.as_str().into()));
            verdict_cols(c, a, v);
            c.i("status", Some(r.status as i64));
            c.s("method", r.method.clone());
            c.s("uri", r.uri.clone());
            c.s("client", r.client.clone());
            c.s("vhost", r.host.clone());
            c.s("upstream_addr", r.upstream_addr.clone());
            c.s("upstream_status", r.upstream_status.clone());
            c.f("request_time", r.request_time);
            c.f("upstream_response_time", r.upstream_response_time);
            c.f("upstream_connect_time", r.upstream_connect_time);
            c.f("upstream_header_time", r.upstream_header_time);
            c.s("outcome", Some(t.outcome.as_str().into()));
            c.s("proximate", Some(t.proximate.into()));
            c.s("user_agent", r.user_agent.clone());
            c.s("request", r.request.clone());
            // The peer named by the nginx line the verdict rests on (access logs in `combined`
            // carry no upstream fields).
            let primary = t.lines.iter().rev().find(|&&li| a.scan.errors[li].failure);
            c.s("upstream", primary.and_then(|&li| a.scan.errors[li].upstream.clone()));
        }
        Rec::Error(i) => {
            let (e, v) = (&a.scan.errors[i], &a.corr.lines[i]);
            common(c, "error", e.ts, e.source, e.line);
            let (cls, cause) = v.as_ref().map_or((e.class, e.cause), |v| (v.class, v.cause));
            c.s("cause_class", Some(cls.as_str().into()));
            c.s("cause", Some(cause.as_str().into()));
            if let Some(v) = v {
                verdict_cols(c, a, v);
            }
            c.s("level", Some(e.level.as_str().into()));
            c.i("pid", Some(e.pid as i64));
            c.i("conn", e.conn.map(|x| x as i64));
            c.s("signature", Some(e.signature.into()));
            c.i("errno", e.errno.map(i64::from));
            c.s("phase", Some(e.phase.as_str().into()));
            c.s("line_class", Some(e.class.as_str().into()));
            c.b("failure", e.failure);
            c.s("client", e.client.clone());
            c.s("server", e.server.clone());
            c.s("request", e.request.clone());
            c.s("upstream", e.upstream.clone());
            c.s("vhost", e.host.clone());
            c.s("referrer", e.referrer.clone());
            c.s("message", Some(e.message.clone()));
            c.i("entry_lines", Some(e.lines as i64));
        }
        Rec::Fpm(i) => {
            let e = &a.scan.fpm[i];
            common(c, "fpm", e.ts, e.source, e.line);
            c.s("level", Some(e.level.as_str().into()));
            c.s("pool", e.pool.clone());
            c.s("event", Some(e.kind.as_str().into()));
            c.i("child_pid", e.child_pid.map(i64::from));
            c.i("signal", e.signal.map(i64::from));
            c.i("exit_code", e.exit_code.map(i64::from));
            c.s("script", e.script.clone());
            c.s("request", e.request.clone());
            c.f("elapsed_s", e.elapsed_s);
            c.s("message", Some(e.message.clone()));
            c.b("time_exact", e.ts_exact);
        }
    }
}
