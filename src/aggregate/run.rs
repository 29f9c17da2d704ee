//! A run as data: metadata, the events table and the traffic counters. This is what a run
//! directory stores (`summary.json`, `events.parquet`, `counters/*.parquet`) and what every
//! report is computed from, so `analyze`, `merge` and `compare` share one code path.
//!
//! Input: an `Analysis` (fresh) or a run directory (stored). Output: `Run`. Invariants: the
//! events (held per record kind, see `events`) have the documented schema (`EVENT_COLUMNS`)
//! whatever their origin; counters
//! round-trip exactly through Parquet; merging is concatenation of events and addition of
//! counters, so reports over a merged run equal reports over one run of all inputs.

use super::events::{events_frames, Events};
use super::Cols;
use crate::analysis::Analysis;
use crate::model::{Ts, Zone};
use crate::scan::layout::{col, HistKey, Metric, NBINS};
use crate::scan::series::{MinuteHist, Row};
use crate::scan::traffic::{HostTotals, PeerTotals, Traffic};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::model::meta::{InputMeta, RunMeta, SkippedFile, ZoneMeta};

/// The incident detection's knobs of a run.
pub fn incident_params(m: &RunMeta) -> crate::correlate::incidents::Params {
    crate::correlate::incidents::Params {
        gap_ms: m.incident_gap_s * 1000,
        min_failed: m.min_failures,
        sensitivity: m.sensitivity,
    }
}

pub struct Run {
    pub meta: RunMeta,
    pub events: Events,
    pub traffic: Traffic,
    /// Stamps of the event rows not loaded (`store::load_for_compare` leaves out the rows no
    /// compared table reads); the run's range still counts them. Empty otherwise.
    pub unloaded: crate::model::span::Profile,
}

/// Columns of `events.parquet`, in order (README "events.parquet").
pub const EVENT_COLUMNS: &[&str] = &[
    "record",
    "machine",
    "ts",
    "ts_ms",
    "time",
    "file",
    "line",
    "cause_class",
    "cause",
    "confidence",
    "evidence",
    "first_evidence",
    "first_evidence_ms",
    "detail",
    "status",
    "method",
    "uri",
    "client",
    "vhost",
    "upstream_addr",
    "upstream_status",
    "request_time",
    "upstream_response_time",
    "upstream_connect_time",
    "upstream_header_time",
    "outcome",
    "proximate",
    "user_agent",
    "level",
    "pid",
    "conn",
    "signature",
    "errno",
    "phase",
    "line_class",
    "failure",
    "server",
    "request",
    "upstream",
    "referrer",
    "message",
    "entry_lines",
    "pool",
    "event",
    "child_pid",
    "signal",
    "exit_code",
    "script",
    "elapsed_s",
    "time_exact",
    "envelope",
    "container",
    "stream",
    "log_host",
];

impl Run {
    /// The run of an analysis. The counters move out of `a` (they can be large: a copy would
    /// double the peak memory); `a.scan.traffic` is empty afterwards.
    pub fn from_analysis(a: &mut Analysis, o: &crate::model::meta::RunOptions) -> PolarsResult<Run> {
        let traffic = std::mem::take(&mut a.scan.traffic);
        let events = events_frames(a, &o.host)?;
        let a = &*a;
        let f = super::Fmt { a };
        let zone_str = match &a.zone.zone {
            Zone::Local => {
                crate::model::time::format_offset(a.zone.zone.offset_at(a.range().map_or(0, |r| r.0) / 1000))
            }
            z => z.to_string(),
        };
        let inputs = a
            .sources
            .iter()
            .zip(&a.scan.stats)
            .zip(&a.scan.ranges)
            .map(|((s, st), r)| InputMeta {
                path: s.display.clone(),
                machine: o.host.clone(),
                kind: s.kind.as_str().into(),
                compression: s.compression.as_str().into(),
                size: s.size,
                rotation_set: s.set.clone(),
                format: s.format.and_then(|i| a.formats.get(i)).map(|f| f.name.clone()),
                kind_reason: s.kind_reason.clone(),
                bytes: st.bytes,
                lines: st.lines,
                parsed: st.parsed,
                malformed: st.malformed,
                skipped: st.skipped,
                other: st.other,
                prefix_fit: st.prefix_fit,
                envelope: s.envelope.map(|e| e.as_str().to_string()),
                first: r.map(|r| f.time(r.0)),
                last: r.map(|r| f.time(r.1)),
                malformed_samples: st.malformed_samples.clone(),
            })
            .collect();
        let meta = RunMeta {
            schema_version: crate::model::meta::SCHEMA_VERSION,
            upcause_version: env!("CARGO_PKG_VERSION").into(),
            name: o.name.clone(),
            machines: vec![o.host.clone()],
            zone: ZoneMeta { zone: zone_str, chosen_by: a.zone.chosen_by.into(), detail: a.zone.detail.clone() },
            since_ms: a.since,
            until_ms: a.until,
            inputs,
            skipped_files: a.skipped.iter().map(|(p, r)| SkippedFile { path: p.clone(), reason: r.clone() }).collect(),
            diagnostics: a.diags.clone(),
            incident_gap_s: o.incident_gap_s,
            min_failures: o.min_failures,
            sensitivity: o.sensitivity,
            bucket_s: o.bucket_s,
            top: o.top,
            uri_rules: o.uri_rules.iter().map(|(re, rep)| format!("{}=>{rep}", re.as_str())).collect(),
            machine_requests: Default::default(),
        };
        Ok(Run { meta, events, traffic, unloaded: Default::default() })
    }

    /// Requests per machine, where known: a run of one machine has its counters' total, a
    /// merged run what `merge` kept of each (`RunMeta::machine_requests`).
    pub fn machine_requests(&self) -> std::collections::BTreeMap<String, u64> {
        match self.meta.machines.as_slice() {
            [m] => [(m.clone(), self.traffic.per_sec.total(col::TOTAL))].into(),
            _ => self.meta.machine_requests.clone(),
        }
    }

    /// Time range of the run: the dense range of its events and counted requests, apart from
    /// stamps far from the rest (`model::span`; `analyze` names those in a diagnostic). The
    /// same as `ScanOutput::profile().core()` of the analysis it came from.
    pub fn range(&self) -> Option<(Ts, Ts)> {
        let mut p = self.traffic.profile();
        p.merge(&self.events.profile());
        p.merge(&self.unloaded);
        p.core()
    }
}

// ---- counters <-> Parquet ----

fn u64s(df: &DataFrame, c: &str) -> PolarsResult<Vec<u64>> {
    Ok(df.column(c)?.cast(&DataType::UInt64)?.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}
fn i64s(df: &DataFrame, c: &str) -> PolarsResult<Vec<Option<i64>>> {
    Ok(df.column(c)?.cast(&DataType::Int64)?.i64()?.iter().collect())
}
/// A count column as u32 cells: as it is when stored as u32 (what `counter_batches` writes),
/// else read as u64 and clamped (a cast to u32 would make larger values null).
fn u32_cells(df: &DataFrame, c: &str) -> PolarsResult<UInt32Chunked> {
    let col = df.column(c)?;
    if col.dtype() == &DataType::UInt32 {
        return Ok(col.u32()?.clone());
    }
    let wide = col.cast(&DataType::UInt64)?;
    Ok(wide.u64()?.iter().map(|v| Some(v.unwrap_or(0).min(u32::MAX as u64) as u32)).collect())
}
fn strs(df: &DataFrame, c: &str) -> PolarsResult<Vec<String>> {
    Ok(df.column(c)?.str()?.iter().map(|v| v.unwrap_or_default().to_string()).collect())
}

/// Rows per frame of the two large counter tables (`seconds`, `latency`), which are handed
/// out in batches so that a writer never holds a whole table: as single frames they were
/// 38 MB at the peak of a 2 GiB run (heaptrack).
pub const COUNTER_BATCH: usize = 1 << 16;

/// The counter tables, sorted by their keys, each as one or more consecutive frames (a table
/// with no rows as one empty frame): `sink(name, frame)`.
pub fn counter_batches<E>(
    t: &Traffic,
    err: impl Fn(PolarsError) -> E,
    mut sink: impl FnMut(&'static str, DataFrame) -> Result<(), E>,
) -> Result<(), E> {
    // The stores iterate in time order: no sort. Counts are u32 cells (as counted). A batch's
    // rows are taken first, then each column collected from them in one pass (exact-size
    // vectors handed to polars as they are, `Cols`).
    let seconds = |rows: &[(i64, &Row)]| -> PolarsResult<DataFrame> {
        let mut c = Cols::default();
        c.i64s("sec", rows.iter().map(|r| r.0).collect());
        for (k, name) in col::NAMES.iter().enumerate() {
            c.u32(name, rows.iter().map(|r| r.1[k]).collect());
        }
        c.frame()
    };
    let mut secs = t.per_sec.iter();
    let mut rows: Vec<(i64, &Row)> = Vec::with_capacity(COUNTER_BATCH);
    let mut sent = false;
    loop {
        rows.clear();
        rows.extend(secs.by_ref().take(COUNTER_BATCH));
        // A table with no rows is one empty frame; a full batch may have been the last.
        let last = rows.len() < COUNTER_BATCH;
        if !rows.is_empty() || !sent {
            sink("seconds", seconds(&rows).map_err(&err)?)?;
            sent = true;
        }
        if last {
            break;
        }
    }

    let latency = |minute, metric, bin, count| -> PolarsResult<DataFrame> {
        Cols::default().i64s("minute", minute).u32("metric", metric).u32("bin", bin).u32("count", count).frame()
    };
    // A batch ends at the first minute boundary past `COUNTER_BATCH` rows: a minute adds at most
    // `NBINS` rows per metric, so vectors of this capacity never grow (growing copied them).
    let cap = COUNTER_BATCH + 2 * NBINS;
    let (mut minute, mut metric, mut bin, mut count) =
        (Vec::with_capacity(cap), Vec::with_capacity(cap), Vec::with_capacity(cap), Vec::with_capacity(cap));
    let (mut mx_min, mut mx_metric, mut mx) = (Vec::new(), Vec::new(), Vec::new());
    let mut sent = false;
    for (m, h) in &t.lat.minutes {
        let mut seen = [false; 2];
        for &(idx, n) in &h.bins {
            let key = HistKey::decode(idx);
            let k = key.metric as usize;
            seen[k] = true;
            minute.push(*m);
            metric.push(k as u32);
            bin.push(key.bin as u32);
            count.push(n);
        }
        for (k, _) in seen.iter().enumerate().filter(|s| *s.1) {
            mx_min.push(*m);
            mx_metric.push(k as u32);
            mx.push(h.max[k]);
        }
        // Batches end at a minute boundary.
        if minute.len() >= COUNTER_BATCH {
            let take = |v: &mut Vec<u32>| std::mem::replace(v, Vec::with_capacity(cap));
            let minutes = std::mem::replace(&mut minute, Vec::with_capacity(cap));
            sink("latency", latency(minutes, take(&mut metric), take(&mut bin), take(&mut count)).map_err(&err)?)?;
            sent = true;
        }
    }
    if !minute.is_empty() || !sent {
        sink("latency", latency(minute, metric, bin, count).map_err(&err)?)?;
    }
    let latency_max =
        Cols::default().i64s("minute", mx_min).u32("metric", mx_metric).u32("max_ms", mx).frame().map_err(&err)?;
    sink("latency_max", latency_max)?;
    let mut hosts: Vec<(&Box<[u8]>, &HostTotals)> = t.hosts.iter().collect();
    hosts.sort_by(|a, b| a.0.cmp(b.0));
    let vhosts = Cols::default()
        .strs("vhost", hosts.iter().map(|h| String::from_utf8_lossy(h.0).into_owned()).collect())
        .u64("requests", hosts.iter().map(|h| h.1.requests).collect())
        .u64("failed", hosts.iter().map(|h| h.1.failed).collect())
        .frame()
        .map_err(&err)?;
    let mut peers: Vec<(&Box<[u8]>, &PeerTotals)> = t.peers.iter().collect();
    peers.sort_by(|a, b| a.0.cmp(b.0));
    let peer_names: Vec<String> = peers.iter().map(|p| String::from_utf8_lossy(p.0).into_owned()).collect();
    let peers_df = Cols::default()
        .strs("peer", peer_names.clone())
        .u64("attempts", peers.iter().map(|p| p.1.attempts).collect())
        .u64("failed", peers.iter().map(|p| p.1.failed).collect())
        .i64("first_ok_ms", peers.iter().map(|p| p.1.first_ok).collect())
        .i64("last_ok_ms", peers.iter().map(|p| p.1.last_ok).collect())
        .i64("first_failed_ms", peers.iter().map(|p| p.1.first_failed).collect())
        .frame()
        .map_err(&err)?;
    let mut pl: Vec<(String, u16, u64)> = Vec::new();
    for (name, p) in peer_names.iter().zip(&peers) {
        for (b, n) in p.1.hist.iter() {
            pl.push((name.clone(), b, n));
        }
    }
    pl.sort();
    let peer_latency = Cols::default()
        .strs("peer", pl.iter().map(|x| x.0.clone()).collect())
        .i64("bin", pl.iter().map(|x| Some(x.1 as i64)).collect())
        .u64("count", pl.iter().map(|x| x.2).collect())
        .frame()
        .map_err(&err)?;
    sink("vhosts", vhosts)?;
    sink("peers", peers_df)?;
    sink("peer_latency", peer_latency)?;
    Ok(())
}

/// Rebuild counters from their tables (a stored run), each table read when it is needed
/// (`table(name)`) and dropped before the next, its columns read where they are: holding the
/// six frames at once, and copying the two large ones column by column into vectors (16 bytes
/// a cell as optional integers), was 100 MB of a 2 GiB run's load (`compare` of two such runs:
/// peak anonymous memory 317 MiB before, 235 after).
pub fn traffic_from_tables(table: impl Fn(&str) -> PolarsResult<DataFrame>) -> PolarsResult<Traffic> {
    let mut t = Traffic::default();
    {
        let s = table("seconds")?;
        let secs = s.column("sec")?.cast(&DataType::Int64)?;
        let cols: Vec<UInt32Chunked> = col::NAMES.iter().map(|n| u32_cells(&s, n)).collect::<PolarsResult<_>>()?;
        let mut cells: Vec<_> = cols.iter().map(|c| c.iter()).collect();
        for sec in secs.i64()?.iter() {
            let mut row = [0u32; col::N];
            for (k, c) in cells.iter_mut().enumerate() {
                row[k] = c.next().flatten().unwrap_or(0);
            }
            t.per_sec.add(sec.unwrap_or(0), &row);
        }
    }
    // Latency rows come sorted by (minute, metric, bin) from `counter_batches`, but a file
    // written by something else may not be: collect per minute, then sort each.
    let mut minutes: BTreeMap<i64, MinuteHist> = BTreeMap::new();
    {
        let l = table("latency")?;
        let (m, k) = (l.column("minute")?.cast(&DataType::Int64)?, l.column("metric")?.cast(&DataType::Int64)?);
        let (bin, n) = (l.column("bin")?.cast(&DataType::Int64)?, u32_cells(&l, "count")?);
        for ((m, k), (bin, n)) in m.i64()?.iter().zip(k.i64()?.iter()).zip(bin.i64()?.iter().zip(n.iter())) {
            let metric = if k.unwrap_or(0) <= 0 { Metric::RequestTime } else { Metric::UpstreamResponseTime };
            let key = HistKey::new(metric, bin.unwrap_or(0).clamp(0, u16::MAX as i64) as u16);
            let h = minutes.entry(m.unwrap_or(0)).or_default();
            h.bins.push((key.encode(), n.unwrap_or(0)));
        }
    }
    let l = table("latency_max")?;
    for ((m, k), v) in i64s(&l, "minute")?.into_iter().zip(i64s(&l, "metric")?).zip(u64s(&l, "max_ms")?) {
        let h = minutes.entry(m.unwrap_or(0)).or_default();
        let k = k.unwrap_or(0).clamp(0, 1) as usize;
        h.max[k] = h.max[k].max(v.min(u32::MAX as u64) as u32);
    }
    for (m, mut h) in minutes {
        h.bins.sort_unstable_by_key(|b| b.0);
        // Duplicate (metric, bin) rows add up.
        h.bins.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.saturating_add(later.1);
            }
            same
        });
        t.lat.add(m, h);
    }
    let h = table("vhosts")?;
    for ((name, r), fl) in strs(&h, "vhost")?.into_iter().zip(u64s(&h, "requests")?).zip(u64s(&h, "failed")?) {
        let e = t.hosts.entry(name.into_bytes().into_boxed_slice()).or_default();
        e.requests += r;
        e.failed += fl;
    }
    let p = table("peers")?;
    let names = strs(&p, "peer")?;
    let (att, fl) = (u64s(&p, "attempts")?, u64s(&p, "failed")?);
    let (fo, lo, ff) = (i64s(&p, "first_ok_ms")?, i64s(&p, "last_ok_ms")?, i64s(&p, "first_failed_ms")?);
    for (i, name) in names.into_iter().enumerate() {
        let mut one = Traffic::default();
        one.peers.insert(
            name.into_bytes().into_boxed_slice(),
            PeerTotals {
                attempts: att[i],
                failed: fl[i],
                first_ok: fo[i],
                last_ok: lo[i],
                first_failed: ff[i],
                hist: Default::default(),
            },
        );
        t.merge(one);
    }
    let pl = table("peer_latency")?;
    for ((name, b), n) in strs(&pl, "peer")?.into_iter().zip(i64s(&pl, "bin")?).zip(u64s(&pl, "count")?) {
        if let Some(p) = t.peers.get_mut(name.as_bytes()) {
            p.hist.add(b.unwrap_or(0).clamp(0, NBINS as i64 - 1) as u16, n);
        }
    }
    Ok(t)
}

/// The latency metric of a stored `metric` code.
pub fn metric_name(m: i64) -> &'static str {
    if m == Metric::UpstreamResponseTime as i64 {
        "upstream_response_time"
    } else {
        "request_time"
    }
}

pub fn read_parquet(path: &Path) -> PolarsResult<DataFrame> {
    let f = std::fs::File::open(path)
        .map_err(|e| PolarsError::ComputeError(format!("cannot read {}: {e}", path.display()).into()))?;
    ParquetReader::new(f).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seconds table's batches: an empty store gives one empty frame, exactly one batch of
    /// seconds one frame (no empty one after it), one second more a second frame of one row;
    /// every second comes out once, in order.
    #[test]
    fn seconds_batches_split_at_the_batch_size() {
        let cases = [(0, vec![0]), (COUNTER_BATCH, vec![COUNTER_BATCH]), (COUNTER_BATCH + 1, vec![COUNTER_BATCH, 1])];
        for (n, want) in cases {
            let mut t = Traffic::default();
            for s in 0..n as i64 {
                t.count(1_700_000_000 + s * 3, 200, false);
            }
            t.finish();
            let (mut heights, mut secs) = (Vec::new(), Vec::new());
            counter_batches(
                &t,
                |e| e,
                |name, df| -> PolarsResult<()> {
                    if name == "seconds" {
                        heights.push(df.height());
                        secs.extend(df.column("sec")?.i64()?.into_no_null_iter());
                    }
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(heights, want, "{n} seconds");
            assert_eq!(secs, (0..n as i64).map(|s| 1_700_000_000 + s * 3).collect::<Vec<_>>());
        }
    }

    /// Count cells stored as u32 are read as they are; wider ones (a table not written by
    /// `counter_batches`) are clamped to u32, and a null reads as 0.
    #[test]
    fn u32_cells_reads_u32_and_clamps_wider() {
        let df =
            df!("a" => [Some(7u32), None, Some(u32::MAX)], "b" => [Some(5u64), None, Some(u64::from(u32::MAX) + 9)])
                .unwrap();
        let a: Vec<Option<u32>> = u32_cells(&df, "a").unwrap().iter().collect();
        assert_eq!(a, vec![Some(7), None, Some(u32::MAX)]);
        let b: Vec<Option<u32>> = u32_cells(&df, "b").unwrap().iter().collect();
        assert_eq!(b, vec![Some(5), Some(0), Some(u32::MAX)]);
    }
}
