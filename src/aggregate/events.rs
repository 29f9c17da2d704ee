//! The events table: one row per failing request, per nginx error-log entry and per FPM
//! event, with the columns of `EVENT_COLUMNS`, held as three per-kind frames (`Events`).
//!
//! Input: an `Analysis` (scan rows and their verdicts), or a stored `events.parquet`. Output:
//! `Events`, and `events.parquet` written from it. Invariants: each kind's frame has the
//! columns of `kind_columns` (the others are always null for that kind, so they are not held:
//! a string cell costs 16 bytes even when null) and is sorted by time, file and line (a
//! stable sort of the rows, then built one row at a time into one chunk per column: the same
//! whatever the thread count); `events.parquet` (`wide`) is the three merged in (time, file,
//! line, record) order with every column, exactly what one sorted wide table gave.

pub use super::cells::column_type;
use super::cells::{b, f, i, s, Builder, Cells};
use super::run::EVENT_COLUMNS;
use super::spill::Batched;
use crate::analysis::Analysis;
use crate::correlate::{Evid, TaggedRequest, Verdict};
use crate::model::event::{ErrorRef, FpmEvent, OriginRef, RequestEvent};
use crate::model::Ts;
use polars::prelude::*;

/// What a row needs besides its record: the zone its times are written in, the file names
/// and machines (by source number: a merged run's sources come from several machines).
pub(super) struct RowCtx<'a> {
    pub zone: &'a crate::model::Zone,
    pub files: Vec<&'a str>,
    pub machines: Vec<&'a str>,
}

impl<'a> RowCtx<'a> {
    fn file(&self, s: u32) -> Option<&'a str> {
        self.files.get(s as usize).copied()
    }

    fn machine(&self, s: u32) -> &'a str {
        self.machines.get(s as usize).copied().unwrap_or("")
    }
}

fn evidence_text(x: &RowCtx, ev: &[Evid]) -> (String, Option<(Ts, String)>) {
    let mut v: Vec<&Evid> = ev.iter().collect();
    v.sort_by_key(|e| (e.ts, x.file(e.source()), e.line()));
    v.dedup();
    let name = |e: &Evid| format!("{}:{}", x.file(e.source()).unwrap_or(""), e.line());
    let text = v.iter().map(|e| name(e)).collect::<Vec<_>>().join(" ");
    (text, v.first().map(|e| (e.ts, name(e))))
}

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

/// A stored run's columns of its own incidents: a merged or windowed run finds its own.
const RUN_ONLY: [&str; 2] = ["incident", "contributing"];

/// A stored run's wide rows without `RUN_ONLY`'s columns.
pub(super) fn drop_run_only(wide: &mut DataFrame) -> PolarsResult<()> {
    for c in RUN_ONLY {
        if wide.column(c).is_ok() {
            wide.drop_in_place(c)?;
        }
    }
    Ok(())
}

/// The events of a run, one frame per record kind, each sorted by (ts_ms, file, line).
#[derive(Clone)]
pub struct Events {
    pub req: DataFrame,
    /// The error-log rows held in memory: all of a stored run's; of a fresh analysis, those a
    /// verdict or table reads (upstream failures, joinable lines, lifecycle lines).
    pub err: DataFrame,
    pub fpm: DataFrame,
    /// A fresh analysis's other error-log rows, out of memory (`quiet`): `errors.csv` and
    /// `events.parquet` merge them in (`quiet::error_rows`, `wide::Groups`).
    pub quiet: Option<std::sync::Arc<super::quiet::Quiet>>,
    /// Per held row, its place (`Places`): rows tied on (time, file, line), which only a
    /// merge has (the same file name on two machines), come in the order of their places,
    /// held or quiet. Empty for a fresh analysis (every place 0).
    pub places: Places,
}

/// Per kind, per held row (in the frame's order), its place: the number of its source among
/// a merge's sources (which follow the runs' order, then each run's inputs: a quiet row's
/// place is its source number), or the run's number where the merged runs were loaded
/// whole (`store::load`). Empty when every place is 0.
#[derive(Clone, Default)]
pub struct Places {
    pub req: Vec<u32>,
    pub err: Vec<u32>,
    pub fpm: Vec<u32>,
}

/// The column a merge's rows carry their places in while they are stacked and sorted
/// (`Events::with_places`, `Events::sort_stacked`); never written.
pub(super) const PLACE_COLUMN: &str = "__place";

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
        Ok(Events {
            req: part("request")?,
            err: part("error")?,
            fpm: part("fpm")?,
            quiet: None,
            places: Places::default(),
        })
    }

    /// Rows held in memory.
    pub fn height(&self) -> usize {
        self.req.height() + self.err.height() + self.fpm.height()
    }

    /// The held rows mapped by `f`; the quiet rows and the places are left out.
    fn map(&self, f: impl Fn(&DataFrame) -> PolarsResult<DataFrame>) -> PolarsResult<Events> {
        Ok(Events {
            req: f(&self.req)?,
            err: f(&self.err)?,
            fpm: f(&self.fpm)?,
            quiet: None,
            places: Places::default(),
        })
    }

    /// Rows with `from <= ts_ms < to` (the held rows: compare's tables read no quiet row).
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

    /// Each kind in (ts_ms, file, line) order, ties in their current order (a stored run's
    /// events: they have no quiet rows).
    pub fn sort(&self) -> PolarsResult<Events> {
        self.map(|d| d.sort(["ts_ms", "file", "line"], SortMultipleOptions::default().with_maintain_order(true)))
    }

    /// Each kind with its rows' places as a column (`PLACE_COLUMN`): those of `places` when
    /// it has them, else `place` for every row.
    pub fn with_places(&self, place: u32) -> PolarsResult<Events> {
        let add = |d: &DataFrame, have: &[u32]| -> PolarsResult<DataFrame> {
            let v = if have.len() == d.height() { have.to_vec() } else { vec![place; d.height()] };
            let mut d = d.clone();
            d.with_column(Column::new(PLACE_COLUMN.into(), v))?;
            Ok(d)
        };
        Ok(Events {
            req: add(&self.req, &self.places.req)?,
            err: add(&self.err, &self.places.err)?,
            fpm: add(&self.fpm, &self.places.fpm)?,
            quiet: None,
            places: Places::default(),
        })
    }

    /// `sort`, each large kind gathered a batch at a time into the temporary file of held
    /// rows (`spill::sorted`): `merge`'s held rows, whose sorted copy is not held beside them.
    /// A kind's `PLACE_COLUMN` (`with_places`) breaks ties after the line and moves into
    /// `places`.
    pub fn sort_stacked(&self) -> PolarsResult<Events> {
        use super::spill::sorted;
        let one = |d: &DataFrame| -> PolarsResult<(DataFrame, Vec<u32>)> {
            let (mut d, places) = sorted(d, PLACE_COLUMN)?;
            if d.column(PLACE_COLUMN).is_ok() {
                d.drop_in_place(PLACE_COLUMN)?;
            }
            Ok((d, places))
        };
        let ((req, r), (err, e), (fpm, f)) = (one(&self.req)?, one(&self.err)?, one(&self.fpm)?);
        Ok(Events { req, err, fpm, quiet: None, places: Places { req: r, err: e, fpm: f } })
    }

    /// The same frames, each large kind moved into the temporary file of held rows
    /// (`spill::Stacked`), its strings copied out of the buffers they shared with the rows
    /// left out.
    pub fn stacked(self) -> PolarsResult<Events> {
        let stack = |d: DataFrame| -> PolarsResult<DataFrame> {
            let mut st = super::spill::Stacked::new(d.height(), &d);
            if !st.spills() {
                return Ok(d);
            }
            let empty = d.clear();
            st.push(super::spill::compact(d)?)?;
            Ok(st.finish()?.unwrap_or(empty))
        };
        Ok(Events {
            req: stack(self.req)?,
            err: stack(self.err)?,
            fpm: stack(self.fpm)?,
            quiet: self.quiet,
            places: self.places,
        })
    }

    /// Every event's stamp, quiet rows included, hour by hour (see `model::span`).
    pub fn profile(&self) -> crate::model::span::Profile {
        let mut p = self.quiet.as_ref().map(|q| q.rows.profile.clone()).unwrap_or_default();
        for d in [&self.req, &self.err, &self.fpm] {
            if let Ok(c) = d.column("ts_ms").and_then(|c| c.i64().cloned()) {
                for t in c.iter().flatten() {
                    p.add(t, 1);
                }
            }
        }
        p
    }
}

/// The events of a fresh analysis. Each kind's rows move out of `a`, are visited in the
/// documented order (time, then file, then line; ties keep the scan's order: a stable sort of
/// their positions, so the rows are never copied) and built into the kind's frame
/// (`spill::Batched`: a large kind a batch at a time into a temporary file, so the rows and
/// their finished frame are not both in anonymous memory). The rows are freed with their
/// kind. The three kinds are built at once.
pub fn events_frames(a: &mut Analysis, machine: &str) -> PolarsResult<Events> {
    let quiet = a.scan.quiet.take().map(|rows| std::sync::Arc::new(super::quiet::Quiet::new(rows, a, machine)));
    let requests = std::mem::take(&mut a.scan.requests);
    let tags = std::mem::take(&mut a.corr.requests);
    let fpm = std::mem::take(&mut a.scan.fpm);
    let errors = std::mem::take(&mut a.scan.errors);
    let mut verdicts = std::mem::take(&mut a.corr.lines);
    verdicts.resize_with(errors.len(), || None);
    let a = &*a;
    let x = RowCtx {
        zone: &a.zone.zone,
        files: a.sources.iter().map(|s| s.display.as_str()).collect(),
        machines: vec![machine; a.sources.len()],
    };
    let key = |ts: Ts, src: u32, line: u64| (ts, x.file(src), line);
    // The peer named by the nginx line a request's verdict rests on (access logs in
    // `combined` carry no upstream fields), copied out so that the error-log rows can be
    // built (and freed) beside the requests. One copy per distinct peer: a copy per request
    // was part of the 8 GiB bench corpus's peak as the run model starts (219 to 215 MiB).
    let mut intern = crate::model::texts::Interner::default();
    let upstreams: Vec<Option<std::sync::Arc<str>>> = tags
        .iter()
        .map(|t| {
            let primary = t.lines.iter().rev().filter_map(|&li| errors.get(li)).find(|e| e.failure);
            primary.and_then(|e| e.upstream().map(|u| intern.get(u)))
        })
        .collect();
    drop(intern);
    // Each kind's rows move into its builder, freed when it is done.
    let x = &x;
    let requests = move || {
        let mut c = Batched::new(&kind_columns("request"), requests.len());
        for i in in_order(&requests, |r| key(r.ts, r.source, r.line)) {
            push_request(c.cells(), x, &requests[i], &tags[i], upstreams[i].as_deref());
            c.row_done()?;
        }
        c.finish()
    };
    let fpm = move || {
        let mut c = Batched::new(&kind_columns("fpm"), fpm.len());
        for i in in_order(&fpm, |e| key(e.ts, e.source, e.line)) {
            push_fpm(c.cells(), x, &fpm[i]);
            c.row_done()?;
        }
        c.finish()
    };
    let errors = move || {
        let mut c = Batched::new(&kind_columns("error"), errors.len());
        for i in in_order(&errors, |e| key(e.ts, e.source, e.line)) {
            push_error(c.cells(), x, errors[i].view(), verdicts[i].as_ref());
            c.row_done()?;
        }
        c.finish()
    };
    let (req, (fpm, err)) = rayon::join(requests, || rayon::join(fpm, errors));
    Ok(Events { req: req?, err: err?, fpm: fpm?, quiet, places: Places::default() })
}

/// The positions of `rows` in the order of `key` (stable).
fn in_order<T, K: Ord>(rows: &[T], key: impl Fn(&T) -> K) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| key(&rows[i]));
    order
}

/// The columns a record kind holds, in the wide table's order.
pub(super) fn kind_columns(rec: &str) -> Vec<&'static str> {
    EVENT_COLUMNS.iter().copied().filter(|c| kind_has(rec, c)).collect()
}

/// The verdict's confidence, evidence and detail (requests and upstream error lines alike).
fn verdict_cols<'a, C: Cells<'a>>(c: &mut C, x: &RowCtx<'a>, v: &'a crate::correlate::Verdict) {
    s!(c, "confidence", Some(v.confidence.as_str()));
    let (text, first) = evidence_text(x, &v.evidence);
    s!(c, "evidence", Some(text));
    i!(c, "first_evidence_ms", first.as_ref().map(|f| f.0));
    s!(c, "first_evidence", first.map(|f| f.1));
    s!(c, "detail", Some(&*v.detail));
}

/// The columns of a record's envelope (empty for lines read from plain files).
fn origin_cols<'a, C: Cells<'a>>(c: &mut C, o: Option<&'a std::sync::Arc<crate::model::Origin>>) {
    origin_ref_cols(c, o.map(|o| o.view()));
}

fn origin_ref_cols<'a, C: Cells<'a>>(c: &mut C, o: Option<OriginRef<'a>>) {
    let Some(o) = o else { return };
    s!(c, "envelope", Some(o.envelope.as_str()));
    s!(c, "container", o.name);
    s!(c, "stream", o.stream.map(|s| s.as_str()));
    s!(c, "log_host", o.host);
}

/// The columns every kind fills.
fn common<'a, C: Cells<'a>>(c: &mut C, x: &RowCtx<'a>, rec: &'static str, ts: Ts, src: u32, line: u64) {
    c.row();
    s!(c, "record", Some(rec));
    s!(c, "machine", Some(x.machine(src)));
    i!(c, "ts_ms", Some(ts));
    c.time(const { super::cells::pos(super::cells::STR_COLS, "time") }, ts, x.zone);
    s!(c, "file", x.file(src));
    i!(c, "line", Some(line as i64));
}

/// The frame of error-log rows without verdicts (quiet rows), in the given order.
pub(super) fn error_frame(x: &RowCtx, rows: &[ErrorRef]) -> PolarsResult<DataFrame> {
    let mut c = Builder::new(&kind_columns("error"), rows.len());
    for e in rows {
        push_error(&mut c, x, *e, None);
    }
    c.finish()
}

/// The frame of FPM rows, in the given order.
pub(super) fn fpm_frame(x: &RowCtx, rows: &[FpmEvent]) -> PolarsResult<DataFrame> {
    let mut c = Builder::new(&kind_columns("fpm"), rows.len());
    for e in rows {
        push_fpm(&mut c, x, e);
    }
    c.finish()
}

/// One error-log row: its own cause, or its verdict's.
pub(super) fn push_error<'a, C: Cells<'a>>(c: &mut C, x: &RowCtx<'a>, e: ErrorRef<'a>, v: Option<&'a Verdict>) {
    common(c, x, "error", e.ts, e.source, e.line);
    let (cls, cause) = v.as_ref().map_or((e.class, e.cause), |v| (v.class, v.cause));
    s!(c, "cause_class", Some(cls.as_str()));
    s!(c, "cause", Some(cause.as_str()));
    if let Some(v) = v {
        verdict_cols(c, x, v);
    }
    s!(c, "level", Some(e.level.as_str()));
    i!(c, "pid", Some(e.pid as i64));
    i!(c, "conn", e.conn.map(|x| x as i64));
    s!(c, "signature", Some(e.signature));
    i!(c, "errno", e.errno.map(i64::from));
    s!(c, "phase", Some(e.phase.as_str()));
    s!(c, "line_class", Some(e.class.as_str()));
    b!(c, "failure", e.failure);
    s!(c, "client", e.client);
    s!(c, "server", e.server);
    s!(c, "request", e.request);
    s!(c, "upstream", e.upstream);
    s!(c, "vhost", e.host);
    s!(c, "referrer", e.referrer);
    s!(c, "message", Some(e.message));
    i!(c, "entry_lines", Some(e.lines as i64));
    origin_ref_cols(c, e.origin);
}

/// A failing request's row; `upstream` is the peer of the error line its verdict rests on.
fn push_request<'a, C: Cells<'a>>(
    c: &mut C,
    x: &RowCtx<'a>,
    r: &'a RequestEvent,
    t: &'a TaggedRequest,
    upstream: Option<&'a str>,
) {
    common(c, x, "request", r.ts, r.source, r.line);
    let v = &t.verdict;
    s!(c, "cause_class", Some(v.class.as_str()));
    s!(c, "cause", Some(v.cause.as_str()));
    verdict_cols(c, x, v);
    i!(c, "status", Some(r.status as i64));
    s!(c, "method", r.method());
    s!(c, "uri", r.uri());
    s!(c, "client", r.client());
    s!(c, "vhost", r.host());
    s!(c, "upstream_addr", r.upstream_addr());
    s!(c, "upstream_status", r.upstream_status());
    f!(c, "request_time", r.request_time);
    f!(c, "upstream_response_time", r.upstream_response_time);
    f!(c, "upstream_connect_time", r.upstream_connect_time);
    f!(c, "upstream_header_time", r.upstream_header_time);
    s!(c, "outcome", Some(t.outcome.as_str()));
    s!(c, "proximate", Some(t.proximate));
    s!(c, "user_agent", r.user_agent.as_deref());
    s!(c, "request", r.request());
    s!(c, "upstream", upstream);
    origin_cols(c, r.origin.as_ref());
}

pub(super) fn push_fpm<'a, C: Cells<'a>>(c: &mut C, x: &RowCtx<'a>, e: &'a FpmEvent) {
    common(c, x, "fpm", e.ts, e.source, e.line);
    s!(c, "level", Some(e.level.as_str()));
    s!(c, "pool", e.pool.as_deref());
    s!(c, "event", Some(e.kind.as_str()));
    i!(c, "child_pid", e.child_pid.map(i64::from));
    i!(c, "signal", e.signal.map(i64::from));
    i!(c, "exit_code", e.exit_code.map(i64::from));
    s!(c, "script", e.script.as_deref());
    s!(c, "request", e.request.as_deref());
    f!(c, "elapsed_s", e.elapsed_s);
    s!(c, "message", Some(e.message.as_str()));
    b!(c, "time_exact", e.ts_exact);
    origin_cols(c, e.origin.as_ref());
}
