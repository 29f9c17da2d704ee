//! The events table: one row per failing request, per nginx error-log entry and per FPM
//! event, with the columns of `EVENT_COLUMNS`, held as three per-kind frames (`Events`).
//!
//! Input: an `Analysis` (scan rows and their verdicts), or a stored `events.parquet`. Output:
//! `Events`, and `events.parquet` written from it. Invariants: each kind's frame has the
//! columns of `kind_columns` (the others are always null for that kind, so they are not held:
//! a string cell costs 16 bytes even when null) and is sorted by time, file and line; frames are
//! built in parallel batches but stacked in input order after a stable sort of the row
//! indices, so they are the same whatever the thread count; `events.parquet` is the three
//! merged in (time, file, line, record) order with every column, exactly what one sorted wide
//! table gave.

use super::run::EVENT_COLUMNS;
use crate::analysis::Analysis;
use crate::correlate::Evid;
use crate::model::time::format_rfc3339;
use crate::model::Ts;
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
    "envelope",
    "container",
    "stream",
    "log_host",
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
    /// The frame of columns `names` (in that order).
    fn frame(mut self, names: &[&'static str]) -> PolarsResult<DataFrame> {
        let mut cols = Vec::new();
        for name in names {
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

/// Columns only requests fill.
const REQUEST_ONLY: &[&str] = &[
    "status",
    "method",
    "uri",
    "upstream_addr",
    "upstream_status",
    "request_time",
    "upstream_response_time",
    "upstream_connect_time",
    "upstream_header_time",
    "outcome",
    "proximate",
    "user_agent",
    "incident",
    "contributing",
];
/// Columns only error-log entries fill.
const ERROR_ONLY: &[&str] =
    &["pid", "conn", "signature", "errno", "phase", "line_class", "failure", "server", "referrer", "entry_lines"];
/// Columns only FPM events fill.
const FPM_ONLY: &[&str] = &["pool", "event", "child_pid", "signal", "exit_code", "script", "elapsed_s", "time_exact"];

/// Whether a column of the wide table is held for record kind `rec` (the others are always
/// null for it).
pub fn kind_has(rec: &str, c: &str) -> bool {
    let others: [&[&str]; 3] = match rec {
        "request" => [ERROR_ONLY, FPM_ONLY, &["level", "message"]],
        "error" => [REQUEST_ONLY, FPM_ONLY, &[]],
        _ => [REQUEST_ONLY, ERROR_ONLY, &[]],
    };
    !others.iter().any(|o| o.contains(&c))
}

/// The type of a column of the wide table.
pub fn column_type(c: &str) -> DataType {
    if c == "ts" {
        DataType::Datetime(TimeUnit::Milliseconds, None)
    } else if INT_COLS.contains(&c) {
        DataType::Int64
    } else if F64_COLS.contains(&c) {
        DataType::Float64
    } else if BOOL_COLS.contains(&c) {
        DataType::Boolean
    } else {
        DataType::String
    }
}

/// The events of a run, one frame per record kind, each sorted by (ts_ms, file, line).
#[derive(Clone)]
pub struct Events {
    pub req: DataFrame,
    pub err: DataFrame,
    pub fpm: DataFrame,
}

impl Events {
    /// Split a wide table (a stored `events.parquet`) by kind, keeping each kind's columns.
    pub fn from_wide(df: &DataFrame) -> PolarsResult<Events> {
        let part = |rec: &str| -> PolarsResult<DataFrame> {
            let keep: Vec<Expr> = df
                .get_column_names()
                .into_iter()
                .filter(|c| kind_has(rec, c.as_str()))
                .map(|c| col(c.clone()))
                .collect();
            df.clone().lazy().filter(col("record").eq(lit(rec))).select(keep).collect()
        };
        Ok(Events { req: part("request")?, err: part("error")?, fpm: part("fpm")? })
    }

    pub fn height(&self) -> usize {
        self.req.height() + self.err.height() + self.fpm.height()
    }

    fn map(&self, f: impl Fn(&DataFrame) -> PolarsResult<DataFrame>) -> PolarsResult<Events> {
        Ok(Events { req: f(&self.req)?, err: f(&self.err)?, fpm: f(&self.fpm)? })
    }

    /// Rows with `from <= ts_ms < to`.
    pub fn window(&self, from: Ts, to: Ts) -> PolarsResult<Events> {
        self.map(|d| d.clone().lazy().filter(col("ts_ms").gt_eq(lit(from)).and(col("ts_ms").lt(lit(to)))).collect())
    }

    /// Append another run's events (then `sort`).
    pub fn vstack(&mut self, o: &Events) -> PolarsResult<()> {
        self.req.vstack_mut(&o.req)?;
        self.err.vstack_mut(&o.err)?;
        self.fpm.vstack_mut(&o.fpm)?;
        Ok(())
    }

    /// Each kind in (ts_ms, file, line) order, ties in their current order.
    pub fn sort(&self) -> PolarsResult<Events> {
        self.map(|d| d.sort(["ts_ms", "file", "line"], SortMultipleOptions::default().with_maintain_order(true)))
    }

    /// First and last `ts_ms`.
    /// Every event's stamp, hour by hour (see `model::span`).
    pub fn profile(&self) -> crate::model::span::Profile {
        let mut p = crate::model::span::Profile::default();
        for d in [&self.req, &self.err, &self.fpm] {
            if let Ok(c) = d.column("ts_ms").and_then(|c| c.i64().cloned()) {
                for t in c.iter().flatten() {
                    p.add(t, 1);
                }
            }
        }
        p
    }

    pub fn range(&self) -> Option<(Ts, Ts)> {
        let mut r: Option<(Ts, Ts)> = None;
        for d in [&self.req, &self.err, &self.fpm] {
            if let Ok(c) = d.column("ts_ms").and_then(|c| c.i64().cloned()) {
                if let (Some(a), Some(b)) = (c.min(), c.max()) {
                    r = Some(r.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
                }
            }
        }
        r
    }
}

/// The events of a fresh analysis.
pub fn events_frames(a: &Analysis, machine: &str) -> PolarsResult<Events> {
    use rayon::prelude::*;
    // Documented order: time, then file, then line; ties keep the scan's order (stable
    // sort). Ordering the row indices here, rather than sorting the finished frame, spares
    // polars' gather of every column: a second copy of the table at the peak.
    let file = |s: u32| a.sources.get(s as usize).map(|x| x.display.as_str());
    let build = |rec: &'static str, mut recs: Vec<Rec>| -> PolarsResult<DataFrame> {
        let key = |r: &Rec| -> (Ts, Option<&str>, u64) {
            match *r {
                Rec::Request(i) => (a.scan.requests[i].ts, file(a.scan.requests[i].source), a.scan.requests[i].line),
                Rec::Error(i) => (a.scan.errors[i].ts, file(a.scan.errors[i].source), a.scan.errors[i].line),
                Rec::Fpm(i) => (a.scan.fpm[i].ts, file(a.scan.fpm[i].source), a.scan.fpm[i].line),
            }
        };
        recs.sort_by(|x, y| key(x).cmp(&key(y)));
        let names: Vec<&'static str> = EVENT_COLUMNS.iter().copied().filter(|c| kind_has(rec, c)).collect();
        let frames = recs
            .par_chunks(EVENT_BATCH)
            .map(|batch| {
                let mut c = EventCols::default();
                for r in batch {
                    push_record(&mut c, a, machine, *r);
                }
                c.frame(&names)
            })
            .collect::<PolarsResult<Vec<DataFrame>>>()?;
        let mut frames = frames.into_iter();
        let mut df = match frames.next() {
            Some(f) => f,
            None => EventCols::default().frame(&names)?,
        };
        for f in frames {
            df.vstack_mut_owned(f)?;
        }
        // One chunk per column now: every later filter and writer would otherwise
        // concatenate the batches again, each into its own copy.
        df.rechunk_mut_par();
        Ok(df)
    };
    Ok(Events {
        req: build("request", (0..a.scan.requests.len()).map(Rec::Request).collect())?,
        err: build("error", (0..a.scan.errors.len()).map(Rec::Error).collect())?,
        fpm: build("fpm", (0..a.scan.fpm.len()).map(Rec::Fpm).collect())?,
    })
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

/// The columns of a record's envelope (empty for lines read from plain files).
fn origin_cols(c: &mut EventCols, o: Option<&std::sync::Arc<crate::model::Origin>>) {
    let Some(o) = o else { return };
    c.s("envelope", Some(o.envelope.as_str().into()));
    c.s("container", o.name.clone());
    c.s("stream", o.stream.map(|s| s.as_str().into()));
    c.s("log_host", o.host.clone());
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
            origin_cols(c, r.origin.as_ref());
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
            origin_cols(c, e.origin.as_ref());
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
            origin_cols(c, e.origin.as_ref());
        }
    }
}
