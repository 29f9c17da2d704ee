//! Tables built with polars from the analysis: event tables (errors, FPM events, requests),
//! incident and cause tables, and (in `reports`) timelines, frequencies and latency.
//!
//! Input: an `Analysis` (events already sorted by the scan) and render options. Output:
//! polars `DataFrame`s whose column names and order are the documented CSV schemas.
//! Invariants: every frame is sorted by its documented keys before it leaves this module;
//! times are RFC 3339 strings in the analysis zone (CSV) next to a millisecond column where
//! a typed time is useful (Parquet); polars stays inside this module.

use crate::correlate::{Evid, Outcome};
use crate::model::time::format_rfc3339;
use crate::model::{Cause, CauseClass, Ts};
use crate::Analysis;
use polars::prelude::*;

/// Column-by-column frame builder.
#[derive(Default)]
pub struct Cols {
    cols: Vec<Column>,
}

impl Cols {
    pub fn str(&mut self, name: &str, v: Vec<Option<String>>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    pub fn strs(&mut self, name: &str, v: Vec<String>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    pub fn i64(&mut self, name: &str, v: Vec<Option<i64>>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    pub fn u64(&mut self, name: &str, v: Vec<u64>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    pub fn f64(&mut self, name: &str, v: Vec<Option<f64>>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    pub fn frame(&mut self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(std::mem::take(&mut self.cols))
    }
}

/// Render helpers shared by the table builders.
pub struct Fmt<'a> {
    pub a: &'a Analysis,
}

impl Fmt<'_> {
    pub fn time(&self, ts: Ts) -> String {
        format_rfc3339(ts, &self.a.zone.zone)
    }
    pub fn file(&self, src: u32) -> String {
        self.a.sources.get(src as usize).map(|s| s.display.clone()).unwrap_or_default()
    }
    pub fn evidence(&self, ev: &[Evid]) -> String {
        let mut v: Vec<&Evid> = ev.iter().collect();
        v.sort_by_key(|e| (e.ts, e.source, e.line));
        v.dedup();
        v.iter().map(|e| format!("{}:{}", self.file(e.source), e.line)).collect::<Vec<_>>().join(" ")
    }
}

/// `errors.csv`: one row per nginx error entry kept by the scan.
pub fn errors(a: &Analysis) -> PolarsResult<DataFrame> {
    let f = Fmt { a };
    let e = &a.scan.errors;
    let v = &a.corr.lines;
    let mut c = Cols::default();
    c.strs("time", e.iter().map(|x| f.time(x.ts)).collect())
        .strs("file", e.iter().map(|x| f.file(x.source)).collect())
        .u64("line", e.iter().map(|x| x.line).collect())
        .strs("level", e.iter().map(|x| x.level.as_str().into()).collect())
        .u64("pid", e.iter().map(|x| x.pid as u64).collect())
        .i64("conn", e.iter().map(|x| x.conn.map(|c| c as i64)).collect())
        .strs("signature", e.iter().map(|x| x.signature.into()).collect())
        .i64("errno", e.iter().map(|x| x.errno.map(i64::from)).collect())
        .strs("phase", e.iter().map(|x| x.phase.as_str().into()).collect())
        .strs(
            "cause_class",
            e.iter().zip(v).map(|(x, v)| v.as_ref().map_or(x.class, |v| v.class).as_str().into()).collect(),
        )
        .strs("cause", e.iter().zip(v).map(|(x, v)| v.as_ref().map_or(x.cause, |v| v.cause).as_str().into()).collect())
        .str("client", e.iter().map(|x| x.client.clone()).collect())
        .str("server", e.iter().map(|x| x.server.clone()).collect())
        .str("request", e.iter().map(|x| x.request.clone()).collect())
        .str("upstream", e.iter().map(|x| x.upstream.clone()).collect())
        .str("host", e.iter().map(|x| x.host.clone()).collect())
        .strs("message", e.iter().map(|x| x.message.clone()).collect())
        .strs("line_class", e.iter().map(|x| x.class.as_str().into()).collect())
        .strs("failure", e.iter().map(|x| if x.failure { "yes" } else { "no" }.into()).collect())
        .str("confidence", v.iter().map(|v| v.as_ref().map(|v| v.confidence.as_str().into())).collect())
        .str("evidence", v.iter().map(|v| v.as_ref().map(|v| f.evidence(&v.evidence))).collect())
        .i64("lines", e.iter().map(|x| Some(x.lines as i64)).collect());
    c.frame()
}

/// `fpm.csv`: one row per FPM event.
pub fn fpm(a: &Analysis) -> PolarsResult<DataFrame> {
    let f = Fmt { a };
    let e = &a.scan.fpm;
    let mut c = Cols::default();
    c.strs("time", e.iter().map(|x| f.time(x.ts)).collect())
        .strs("file", e.iter().map(|x| f.file(x.source)).collect())
        .u64("line", e.iter().map(|x| x.line).collect())
        .strs("level", e.iter().map(|x| x.level.as_str().into()).collect())
        .str("pool", e.iter().map(|x| x.pool.clone()).collect())
        .strs("event", e.iter().map(|x| x.kind.as_str().into()).collect())
        .i64("child_pid", e.iter().map(|x| x.child_pid.map(i64::from)).collect())
        .i64("signal", e.iter().map(|x| x.signal.map(i64::from)).collect())
        .i64("exit_code", e.iter().map(|x| x.exit_code.map(i64::from)).collect())
        .str("script", e.iter().map(|x| x.script.clone()).collect())
        .str("request", e.iter().map(|x| x.request.clone()).collect())
        .f64("elapsed_s", e.iter().map(|x| x.elapsed_s).collect())
        .strs("message", e.iter().map(|x| x.message.clone()).collect())
        .strs("time_exact", e.iter().map(|x| if x.ts_exact { "yes" } else { "no" }.into()).collect());
    c.frame()
}

/// `requests.csv`: one row per failing request (and per hidden failed attempt).
pub fn requests(a: &Analysis) -> PolarsResult<DataFrame> {
    let f = Fmt { a };
    let r = &a.scan.requests;
    let t = &a.corr.requests;
    let inc = |i: Option<usize>| i.and_then(|i| a.corr.incidents.get(i)).map(|x| x.id.clone());
    let mut c = Cols::default();
    c.strs("time", r.iter().map(|x| f.time(x.ts)).collect())
        .strs("file", r.iter().map(|x| f.file(x.source)).collect())
        .u64("line", r.iter().map(|x| x.line).collect())
        .u64("status", r.iter().map(|x| x.status as u64).collect())
        .str("method", r.iter().map(|x| x.method.clone()).collect())
        .str("uri", r.iter().map(|x| x.uri.clone()).collect())
        .str("client", r.iter().map(|x| x.client.clone()).collect())
        .str("host", r.iter().map(|x| x.host.clone()).collect())
        .str("upstream_addr", r.iter().map(|x| x.upstream_addr.clone()).collect())
        .str("upstream_status", r.iter().map(|x| x.upstream_status.clone()).collect())
        .f64("request_time", r.iter().map(|x| x.request_time).collect())
        .f64("upstream_response_time", r.iter().map(|x| x.upstream_response_time).collect())
        .strs("cause_class", t.iter().map(|x| x.verdict.class.as_str().into()).collect())
        .strs("cause", t.iter().map(|x| x.verdict.cause.as_str().into()).collect())
        .strs("proximate", t.iter().map(|x| x.proximate.into()).collect())
        .strs("confidence", t.iter().map(|x| x.verdict.confidence.as_str().into()).collect())
        .strs("evidence", t.iter().map(|x| f.evidence(&x.verdict.evidence)).collect())
        .str("incident", t.iter().map(|x| inc(x.incident)).collect())
        .strs("outcome", t.iter().map(|x| x.outcome.as_str().into()).collect())
        .str("contributing", t.iter().map(|x| x.contributing.clone()).collect())
        .strs("detail", t.iter().map(|x| x.verdict.detail.clone()).collect());
    c.frame()
}

/// `causes.csv`: upstream-failure error lines per deeper cause, most frequent first.
pub fn causes(a: &Analysis) -> PolarsResult<DataFrame> {
    let f = Fmt { a };
    let mut class = Vec::new();
    let mut cause = Vec::new();
    let mut rank = Vec::new();
    let mut ts = Vec::new();
    for (e, v) in a.scan.errors.iter().zip(&a.corr.lines) {
        if let Some(v) = v {
            class.push(v.class.as_str().to_string());
            cause.push(v.cause.as_str().to_string());
            rank.push(v.class.rank() as u64);
            ts.push(Some(e.ts));
        }
    }
    let mut c = Cols::default();
    let df = c.strs("cause_class", class).strs("cause", cause).u64("rank", rank).i64("ts", ts).frame()?;
    let g = df
        .lazy()
        .group_by([col("cause_class"), col("cause"), col("rank")])
        .agg([
            len().cast(DataType::UInt64).alias("count"),
            col("ts").min().alias("first"),
            col("ts").max().alias("last"),
        ])
        .sort_by_exprs(
            [col("count"), col("rank"), col("cause")],
            SortMultipleOptions::default().with_order_descending_multi([true, false, false]),
        )
        .collect()?;
    let times = |name: &str| -> PolarsResult<Vec<String>> {
        Ok(g.column(name)?.i64()?.iter().map(|t| t.map(|t| f.time(t)).unwrap_or_default()).collect())
    };
    let (first, last) = (times("first")?, times("last")?);
    let mut out = g.select(["cause_class", "cause", "count"])?;
    out.with_column(Column::new("first_seen".into(), first))?;
    out.with_column(Column::new("last_seen".into(), last))?;
    Ok(out)
}

/// `incidents.csv`.
pub fn incidents(a: &Analysis) -> PolarsResult<DataFrame> {
    let f = Fmt { a };
    let i = &a.corr.incidents;
    let top = |x: &crate::correlate::Incident| x.causes.first().copied();
    let mut c = Cols::default();
    c.strs("incident", i.iter().map(|x| x.id.clone()).collect())
        .strs("start", i.iter().map(|x| f.time(x.start)).collect())
        .strs("end", i.iter().map(|x| f.time(x.end)).collect())
        .f64("duration_s", i.iter().map(|x| Some((x.end - x.start) as f64 / 1000.0)).collect())
        .u64("requests", i.iter().map(|x| x.requests).collect())
        .u64("failed", i.iter().map(|x| x.failed).collect())
        .u64("peak_per_min", i.iter().map(|x| x.peak_per_min).collect())
        .strs("top_cause_class", i.iter().map(|x| top(x).map(|t| t.0.as_str()).unwrap_or("").into()).collect())
        .strs("top_cause", i.iter().map(|x| top(x).map(|t| t.1.as_str()).unwrap_or("").into()).collect())
        .strs(
            "causes",
            i.iter()
                .map(|x| x.causes.iter().map(|(c, k, n)| format!("{k}[{c}]={n}")).collect::<Vec<_>>().join("; "))
                .collect(),
        )
        .u64("retried", i.iter().map(|x| x.retried).collect())
        .strs(
            "earliest_evidence",
            i.iter().map(|x| x.earliest_evidence.map(|e| f.evidence(&[e])).unwrap_or_default()).collect(),
        )
        .strs(
            "contributing",
            i.iter()
                .map(|x| {
                    x.spike
                        .map(|(on, base)| format!("traffic_spike ({on:.1}/s at onset vs {base:.1}/s before)"))
                        .unwrap_or_default()
                })
                .collect(),
        )
        .strs("lifecycle", i.iter().map(|x| lifecycle_text(a, x)).collect());
    c.frame()
}

/// Lifecycle events around an incident, as `time kind (file:line)` joined by `; `.
pub fn lifecycle_text(a: &Analysis, x: &crate::correlate::Incident) -> String {
    let f = Fmt { a };
    let mut items: Vec<((Ts, u32, u64), String)> = x
        .fpm_lifecycle
        .iter()
        .map(|&i| {
            let e = &a.scan.fpm[i];
            ((e.ts, e.source, e.line), format!("{} fpm {} ({}:{})", f.time(e.ts), e.kind, f.file(e.source), e.line))
        })
        .collect();
    items.extend(x.nginx_lifecycle.iter().map(|&i| {
        let e = &a.scan.errors[i];
        ((e.ts, e.source, e.line), format!("{} {} ({}:{})", f.time(e.ts), e.signature, f.file(e.source), e.line))
    }));
    items.sort();
    items.into_iter().map(|x| x.1).collect::<Vec<_>>().join("; ")
}

/// Failing requests per (class, cause) and per confidence, for summary.json.
/// (class, cause, failed, retried) rows.
pub type CauseRows = Vec<(CauseClass, Cause, u64, u64)>;

pub fn request_cause_counts(a: &Analysis) -> (CauseRows, [u64; 3]) {
    let mut m: std::collections::BTreeMap<(usize, &'static str), (CauseClass, Cause, u64, u64)> = Default::default();
    let mut conf = [0u64; 3];
    for t in &a.corr.requests {
        let e = m.entry((t.verdict.class.rank(), t.verdict.cause.as_str())).or_insert((
            t.verdict.class,
            t.verdict.cause,
            0,
            0,
        ));
        match t.outcome {
            Outcome::Failed => e.2 += 1,
            Outcome::Retried => e.3 += 1,
        }
        if t.outcome == Outcome::Failed {
            conf[t.verdict.confidence as usize] += 1;
        }
    }
    let mut v: Vec<_> = m.into_values().collect();
    v.sort_by(|a, b| {
        (b.2 + b.3).cmp(&(a.2 + a.3)).then(a.0.rank().cmp(&b.0.rank())).then(a.1.as_str().cmp(b.1.as_str()))
    });
    (v, conf)
}
