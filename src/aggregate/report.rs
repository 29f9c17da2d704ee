//! The report of a run: incidents detected on the events table, and every CSV table
//! (event tables, causes, incidents, timelines, frequencies, latency), built with polars.
//!
//! Input: a `Run` (fresh or stored). Output: `Report`: incidents, the run's per-kind event
//! tables with each request's `incident` and `contributing` filled in, and the named tables in
//! their documented column order. Invariants: every table is sorted by documented keys; nothing
//! here depends on where the run came from, so `analyze` and `merge` agree byte for byte.

use super::events::Events;
use super::freq;
use super::run::Run;
use super::Cols;
use crate::correlate::background::Traffic;
use crate::correlate::incidents::{self, BackgroundReport, IncRow, Incident, Lifecycle};
use crate::model::{Cause, CauseClass, FpmKind, Ts, Zone};
use polars::prelude::*;
use std::str::FromStr;

pub struct Report {
    pub zone: Zone,
    /// The run's time range (`Run::range`: stamps far from the rest left out).
    pub range: Option<(Ts, Ts)>,
    pub bucket_ms: i64,
    pub incidents: Vec<Incident>,
    /// The failures outside every incident.
    pub background: BackgroundReport,
    /// The run's events, requests with `incident` and `contributing`.
    pub events: Events,
    pub tables: Tables,
    /// Evidence samples and post-mortem quotes of the error rows (`quiet::digest`).
    pub digest: super::quiet::Digest,
    /// Paths several of the run's machines logged to: a line's place names its machine there.
    pub shared: SharedPaths,
}

/// The paths that more than one machine of a run logged to: a fleet's runs merged, each host
/// writing `/var/log/nginx/error.log` and `/var/log/php8.2-fpm.log`. Where a report names a
/// line by its place (an incident's lifecycle lines and earliest evidence, `report.html`'s
/// samples, the post-mortem's quotes), `file:line` alone would not say which host's log it is
/// in; there the place is `machine:file:line`. Empty for `analyze` (one machine) and for a
/// merge of distinct paths, so their reports are unchanged. (The row files keep `file:line`
/// in `evidence` and `first_evidence`: each row has its `machine` column, and a verdict's
/// evidence is always in its own machine's logs.)
#[derive(Clone, Debug, Default)]
pub struct SharedPaths(std::collections::BTreeSet<String>);

impl SharedPaths {
    /// From the run's inputs (their path and machine).
    pub fn of(inputs: &[crate::model::meta::InputMeta]) -> SharedPaths {
        let mut first: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        let mut shared = std::collections::BTreeSet::new();
        for i in inputs {
            if *first.entry(&i.path).or_insert(&i.machine) != i.machine.as_str() {
                shared.insert(i.path.clone());
            }
        }
        SharedPaths(shared)
    }

    /// `file:line`, or `machine:file:line` where `file` is shared.
    pub fn place(&self, machine: Option<&str>, file: &str, line: i64) -> String {
        match machine.filter(|_| self.0.contains(file)) {
            Some(m) => format!("{m}:{file}:{line}"),
            None => format!("{file}:{line}"),
        }
    }

    /// A stored place (`file:line`, as `first_evidence` holds it) named the same way.
    pub fn named(&self, machine: Option<&str>, place: &str) -> String {
        match (machine, place.rsplit_once(':')) {
            (Some(m), Some((file, _))) if self.0.contains(file) => format!("{m}:{place}"),
            _ => place.to_string(),
        }
    }
}

/// The report's tables, each written as the CSV file of its name (`Tables::files`);
/// `errors.csv` and `fpm.csv` are streamed from the events instead (`render::csv`: the held
/// rows merged with the quiet ones, `quiet::error_rows`, `quiet::fpm_rows`), since most of
/// those rows are not held in memory.
pub struct Tables {
    pub requests: DataFrame,
    pub causes: DataFrame,
    pub incidents: DataFrame,
    pub timeline: DataFrame,
    pub timeline_causes: DataFrame,
    pub by_cause: DataFrame,
    pub by_upstream: DataFrame,
    pub by_host: DataFrame,
    pub by_uri: DataFrame,
    pub by_client: DataFrame,
    pub by_machine: DataFrame,
    pub by_pool: DataFrame,
    pub latency: DataFrame,
}

impl Tables {
    /// (file name, table), in writing order.
    pub fn files(&self) -> [(&'static str, &DataFrame); 13] {
        [
            ("requests.csv", &self.requests),
            ("causes.csv", &self.causes),
            ("incidents.csv", &self.incidents),
            ("timeline.csv", &self.timeline),
            ("timeline_causes.csv", &self.timeline_causes),
            ("by_cause.csv", &self.by_cause),
            ("by_upstream.csv", &self.by_upstream),
            ("by_host.csv", &self.by_host),
            ("by_uri.csv", &self.by_uri),
            ("by_client.csv", &self.by_client),
            ("by_machine.csv", &self.by_machine),
            ("by_pool.csv", &self.by_pool),
            ("latency.csv", &self.latency),
        ]
    }

    /// The machines an incident's failures (scope `id`) happened on, most first: (machine,
    /// failed).
    pub fn machines_in(&self, id: &str) -> PolarsResult<Vec<(String, i64)>> {
        let (scope, machine, failed) =
            (strs(&self.by_machine, "scope")?, strs(&self.by_machine, "machine")?, i64s(&self.by_machine, "failed")?);
        Ok((0..scope.len())
            .filter(|&i| scope[i].as_deref() == Some(id))
            .map(|i| (machine[i].clone().unwrap_or_default(), failed[i].unwrap_or(0)))
            .collect())
    }
}

pub fn strs(df: &DataFrame, c: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(df.column(c)?.str()?.iter().map(|v| v.map(str::to_string)).collect())
}
pub fn i64s(df: &DataFrame, c: &str) -> PolarsResult<Vec<Option<i64>>> {
    Ok(df.column(c)?.cast(&DataType::Int64)?.i64()?.iter().collect())
}
pub fn f64s(df: &DataFrame, c: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(df.column(c)?.cast(&DataType::Float64)?.f64()?.iter().collect())
}

/// Bucket width for a span: at most a few thousand buckets up to a year, then whole days
/// per bucket so that there are never more than `AUTO_ROWS`.
pub fn auto_bucket_ms(span_ms: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    match span_ms {
        s if s <= 2 * 3_600_000 => 10_000,
        s if s <= 24 * 3_600_000 => 60_000,
        s if s <= 7 * 24 * 3_600_000 => 300_000,
        s if s / 3_600_000 < AUTO_ROWS => 3_600_000,
        s => (s / AUTO_ROWS + DAY - 1) / DAY * DAY,
    }
}

/// Most timeline rows an automatic bucket gives.
const AUTO_ROWS: i64 = 10_000;
/// Most timeline rows a `--bucket` gives: over the run's range, a bucket that would give
/// more is widened to the smallest multiple of itself that gives at most this many.
pub const MAX_TIMELINE_ROWS: i64 = 100_000;

/// The timeline's bucket width: `--bucket` (widened past `MAX_TIMELINE_ROWS`), else from
/// the span of the run's range.
pub fn timeline_bucket_ms(bucket_s: Option<i64>, span_ms: i64) -> i64 {
    match bucket_s {
        Some(b) => {
            let b = b.max(1).saturating_mul(1000);
            b * ((span_ms / b + MAX_TIMELINE_ROWS) / MAX_TIMELINE_ROWS).max(1)
        }
        None => auto_bucket_ms(span_ms),
    }
}

fn yes_no(df: &DataFrame, c: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(df.column(c)?.bool()?.iter().map(|v| v.map(|b| if b { "yes" } else { "no" }.to_string())).collect())
}

fn class_rank(s: &str) -> u64 {
    CauseClass::from_str(s).map(|c| c.rank() as u64).unwrap_or(u64::MAX)
}

/// Incident rows and lifecycle events from the events table; `hosts` is the host table
/// (vhost names of the traffic counters, in order), extended with vhosts only the failures name.
fn incident_inputs(
    req: &DataFrame,
    err: &DataFrame,
    fpm: &DataFrame,
    hosts: &mut Vec<String>,
    shared: &SharedPaths,
) -> PolarsResult<(Vec<IncRow>, Vec<Lifecycle>)> {
    let mut host_ix: std::collections::HashMap<String, u32> =
        hosts.iter().enumerate().map(|(i, h)| (h.clone(), i as u32)).collect();
    let mut client_ix: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let vhost = strs(req, "vhost")?;
    let client = strs(req, "client")?;
    let ts = i64s(req, "ts_ms")?;
    let rt = f64s(req, "request_time")?;
    let outcome = strs(req, "outcome")?;
    let cls = strs(req, "cause_class")?;
    let cause = strs(req, "cause")?;
    let fe = strs(req, "first_evidence")?;
    let fe_ms = i64s(req, "first_evidence_ms")?;
    // Read in place: a string copied per row only where the path is shared (`named`).
    let machine = req.column("machine")?.str()?.clone();
    let rows = (0..req.height())
        .map(|i| {
            let t = ts[i].unwrap_or(0);
            IncRow {
                ts: t,
                start: t - rt[i].map(|x| (x * 1000.0).round() as i64).unwrap_or(0),
                failed: outcome[i].as_deref() == Some("failed"),
                class: cls[i].as_deref().and_then(|c| CauseClass::from_str(c).ok()).unwrap_or(CauseClass::Unexplained),
                cause: cause[i].as_deref().and_then(|c| Cause::from_str(c).ok()).unwrap_or(Cause::Unexplained),
                first_evidence: fe_ms[i].zip(fe[i].as_deref().map(|p| shared.named(machine.get(i), p))),
                host: vhost[i].as_ref().map(|h| {
                    let n = host_ix.len() as u32;
                    *host_ix.entry(h.clone()).or_insert_with(|| {
                        hosts.push(h.clone());
                        n
                    })
                }),
                client: client[i].as_ref().map(|c| {
                    let n = client_ix.len() as u32;
                    *client_ix.entry(c.clone()).or_insert(n)
                }),
            }
        })
        .collect();
    // Lifecycle lines only: the columns are read in place (copying every FPM and error-log
    // row's strings to find the few lifecycle lines cost 0.2 s on a noisy log).
    let mut life = Vec::new();
    let sc = |d: &DataFrame, c: &str| -> PolarsResult<StringChunked> { Ok(d.column(c)?.str()?.clone()) };
    let (ft, fk, ff, fl, ftime) =
        (i64s(fpm, "ts_ms")?, sc(fpm, "event")?, sc(fpm, "file")?, i64s(fpm, "line")?, sc(fpm, "time")?);
    let fm = sc(fpm, "machine")?;
    for i in 0..fpm.height() {
        let kind = fk.get(i).and_then(|k| FpmKind::from_str(k).ok());
        if kind.is_some_and(FpmKind::is_lifecycle) {
            life.push(Lifecycle {
                ts: ft[i].unwrap_or(0),
                text: format!(
                    "{} fpm {} ({})",
                    ftime.get(i).unwrap_or(""),
                    fk.get(i).unwrap_or(""),
                    shared.place(fm.get(i), ff.get(i).unwrap_or(""), fl[i].unwrap_or(0))
                ),
            });
        }
    }
    let (et, es, ef, el, etime) =
        (i64s(err, "ts_ms")?, sc(err, "signature")?, sc(err, "file")?, i64s(err, "line")?, sc(err, "time")?);
    let em = sc(err, "machine")?;
    for i in 0..err.height() {
        if let Some(sig) = es.get(i).filter(|s| s.starts_with("nginx_")) {
            life.push(Lifecycle {
                ts: et[i].unwrap_or(0),
                text: format!(
                    "{} {} ({})",
                    etime.get(i).unwrap_or(""),
                    sig,
                    shared.place(em.get(i), ef.get(i).unwrap_or(""), el[i].unwrap_or(0))
                ),
            });
        }
    }
    Ok((rows, life))
}

/// A run's incidents, and its events with each request's `incident` and `contributing`: all
/// the row files (`events.parquet`, `errors.csv`, `fpm.csv`) need, so they can be written
/// while the other tables are built (`tables`).
pub struct Detected {
    pub zone: Zone,
    pub range: Option<(Ts, Ts)>,
    pub bucket_ms: i64,
    pub incidents: Vec<Incident>,
    pub background: BackgroundReport,
    pub events: Events,
    pub shared: SharedPaths,
}

impl Detected {
    pub fn into_report(self, tables: Tables, digest: super::quiet::Digest) -> Report {
        let Detected { zone, range, bucket_ms, incidents, background, events, shared } = self;
        Report { zone, range, bucket_ms, incidents, background, events, tables, digest, shared }
    }
}

/// The whole report of a run: `detect`, then `tables`.
pub fn build(run: &Run) -> PolarsResult<Report> {
    let d = detect(run)?;
    let (tables, digest) = tables(run, &d)?;
    Ok(d.into_report(tables, digest))
}

/// Incidents of a run, and its events with each request's incident.
pub fn detect(run: &Run) -> PolarsResult<Detected> {
    let zone = run.meta.zone();
    let (req, err, fpm) = (run.events.req.clone(), run.events.err.clone(), run.events.fpm.clone());
    // The host table: the counters' vhosts in name order (their totals), then any other.
    let mut names: Vec<&Box<[u8]>> = run.traffic.hosts.keys().collect();
    names.sort();
    let mut hosts: Vec<String> = names.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
    let mut host_requests: Vec<u64> = names.iter().map(|n| run.traffic.hosts[*n].requests).collect();
    let t = std::time::Instant::now();
    let shared = SharedPaths::of(&run.meta.inputs);
    let (rows, life) = incident_inputs(&req, &err, &fpm, &mut hosts, &shared)?;
    host_requests.resize(hosts.len(), 0);
    let traffic = Traffic { per_sec: &run.traffic.per_sec, host_requests: &host_requests };
    let detection = incidents::detect(&rows, &traffic, &life, &super::run::incident_params(&run.meta));
    let background = incidents::background_report(&rows, &detection, &run.traffic.per_sec);
    let (incidents, member) = (detection.incidents, detection.member_of);
    // Requests get their incident id and contributing factor.
    let inc_col: Vec<Option<String>> = member.iter().map(|m| m.map(|i| incidents[i].id.clone())).collect();
    let contrib: Vec<Option<String>> = member.iter().map(|m| m.and_then(|i| incidents[i].contributing())).collect();
    let mut req = req;
    req.with_column(Column::new("incident".into(), inc_col))?;
    req.with_column(Column::new("contributing".into(), contrib))?;
    let range = run.range();
    let bucket_ms = timeline_bucket_ms(run.meta.bucket_s, range.map_or(0, |(a, b)| b - a));
    crate::timings::timing("report tables: incidents", t);
    let events = Events { req, err, fpm, quiet: run.events.quiet.clone(), places: run.events.places.clone() };
    Ok(Detected { zone, range, bucket_ms, incidents, background, events, shared })
}

/// The tables of a detected run, and the digest of its error rows.
pub fn tables(run: &Run, d: &Detected) -> PolarsResult<(Tables, super::quiet::Digest)> {
    let t = std::time::Instant::now();
    let (zone, incidents, ev) = (&d.zone, &d.incidents, &d.events);
    let ctx = freq::Ctx { run, req: &ev.req, fpm: &ev.fpm, incidents, zone, bucket_ms: d.bucket_ms, range: d.range };
    let mut f: std::collections::HashMap<&str, DataFrame> = freq::tables(&ctx)?.into_iter().collect();
    crate::timings::timing("report tables: frequency tables", t);
    let t = std::time::Instant::now();
    let mut take = |n: &str| f.remove(n).ok_or_else(|| PolarsError::ComputeError(format!("no {n}").into()));
    let tables = Tables {
        requests: requests_table(&ev.req)?,
        causes: causes_table(&ev.err)?,
        incidents: incidents_table(incidents, zone)?,
        timeline: take("timeline.csv")?,
        timeline_causes: take("timeline_causes.csv")?,
        by_cause: take("by_cause.csv")?,
        by_upstream: take("by_upstream.csv")?,
        by_host: take("by_host.csv")?,
        by_uri: take("by_uri.csv")?,
        by_client: take("by_client.csv")?,
        by_machine: take("by_machine.csv")?,
        by_pool: take("by_pool.csv")?,
        latency: take("latency.csv")?,
    };
    crate::timings::timing("report tables: row tables", t);
    let t = std::time::Instant::now();
    // The quote windows of each cause: from a minute before each incident with that cause to
    // a few seconds after it.
    let mut windows: std::collections::BTreeMap<&str, Vec<(Ts, Ts)>> = Default::default();
    for x in incidents {
        for (_, k, _) in &x.causes {
            windows
                .entry(k.as_str())
                .or_default()
                .push((x.start - super::quiet::QUOTE_BEFORE_MS, x.end + super::quiet::QUOTE_AFTER_MS));
        }
    }
    let digest = super::quiet::digest(ev, &windows)?;
    crate::timings::timing("report tables: evidence samples", t);
    Ok((tables, digest))
}

/// The `errors.csv` columns of error-log rows.
pub fn errors_table(e: &DataFrame) -> PolarsResult<DataFrame> {
    let mut out = e.select([
        "time",
        "file",
        "line",
        "level",
        "pid",
        "conn",
        "signature",
        "errno",
        "phase",
        "cause_class",
        "cause",
        "client",
        "server",
        "request",
        "upstream",
        "vhost",
        "message",
        "line_class",
    ])?;
    out.rename("vhost", "host".into())?;
    out.with_column(Column::new("failure".into(), yes_no(e, "failure")?))?;
    for c in ["confidence", "evidence"] {
        out.with_column(e.column(c)?.clone())?;
    }
    let mut lines = e.column("entry_lines")?.clone();
    lines.rename("lines".into());
    out.with_column(lines)?;
    out.with_column(e.column("machine")?.clone())?;
    Ok(out)
}

/// The `fpm.csv` columns of FPM rows.
pub fn fpm_table(e: &DataFrame) -> PolarsResult<DataFrame> {
    let mut out = e.select([
        "time",
        "file",
        "line",
        "level",
        "pool",
        "event",
        "child_pid",
        "signal",
        "exit_code",
        "script",
        "request",
        "elapsed_s",
        "message",
    ])?;
    out.with_column(Column::new("time_exact".into(), yes_no(e, "time_exact")?))?;
    out.with_column(e.column("machine")?.clone())?;
    Ok(out)
}

fn requests_table(r: &DataFrame) -> PolarsResult<DataFrame> {
    let mut out = r.select([
        "time",
        "file",
        "line",
        "status",
        "method",
        "uri",
        "client",
        "vhost",
        "upstream_addr",
        "upstream_status",
        "request_time",
        "upstream_response_time",
        "cause_class",
        "cause",
        "proximate",
        "confidence",
        "evidence",
        "incident",
        "outcome",
        "contributing",
        "detail",
        "machine",
    ])?;
    out.rename("vhost", "host".into())?;
    Ok(out)
}

fn causes_table(err: &DataFrame) -> PolarsResult<DataFrame> {
    let f = err.clone().lazy().filter(col("failure").eq(lit(true))).collect()?;
    let rank: Vec<u64> = strs(&f, "cause_class")?.iter().map(|c| class_rank(c.as_deref().unwrap_or(""))).collect();
    let mut f = f.select(["cause_class", "cause", "ts_ms", "time"])?;
    f.with_column(Column::new("rank".into(), rank))?;
    f.lazy()
        .sort(["ts_ms"], SortMultipleOptions::default().with_maintain_order(true))
        .group_by([col("cause_class"), col("cause"), col("rank")])
        .agg([
            len().cast(DataType::UInt64).alias("count"),
            col("time").first().alias("first_seen"),
            col("time").last().alias("last_seen"),
        ])
        .sort_by_exprs(
            [col("count"), col("rank"), col("cause")],
            SortMultipleOptions::default().with_order_descending_multi([true, false, false]),
        )
        .select([col("cause_class"), col("cause"), col("count"), col("first_seen"), col("last_seen")])
        .collect()
}

pub fn incidents_table(i: &[Incident], z: &Zone) -> PolarsResult<DataFrame> {
    let t = |ts: Ts| crate::model::time::format_rfc3339(ts, z);
    let top = |x: &Incident| x.causes.first().copied();
    Cols::default()
        .strs("incident", i.iter().map(|x| x.id.clone()).collect())
        .u64("rank", i.iter().map(|x| x.rank as u64).collect())
        .strs("start", i.iter().map(|x| t(x.start)).collect())
        .strs("end", i.iter().map(|x| t(x.end)).collect())
        .f64("duration_s", i.iter().map(|x| Some(x.duration_s())).collect())
        .u64("requests", i.iter().map(|x| x.requests).collect())
        .u64("failed", i.iter().map(|x| x.failed).collect())
        .f64("failed_share", i.iter().map(|x| Some(x.failed_share())).collect())
        .u64("clients", i.iter().map(|x| x.clients).collect())
        .u64("peak_per_min", i.iter().map(|x| x.peak_per_min).collect())
        .f64("expected_background", i.iter().map(|x| Some(x.expected)).collect())
        .f64("p_value", i.iter().map(|x| Some(x.p_value)).collect())
        .strs("top_cause_class", i.iter().map(|x| top(x).map_or("", |t| t.0.as_str()).into()).collect())
        .strs("top_cause", i.iter().map(|x| top(x).map_or("", |t| t.1.as_str()).into()).collect())
        .strs(
            "causes",
            i.iter()
                .map(|x| x.causes.iter().map(|(c, k, n)| format!("{k}[{c}]={n}")).collect::<Vec<_>>().join("; "))
                .collect(),
        )
        .u64("retried", i.iter().map(|x| x.retried).collect())
        .strs("earliest_evidence", i.iter().map(|x| x.earliest_evidence.clone().unwrap_or_default()).collect())
        .strs("contributing", i.iter().map(|x| x.contributing().unwrap_or_default()).collect())
        .strs("lifecycle", i.iter().map(|x| x.lifecycle.join("; ")).collect())
        .frame()
}
