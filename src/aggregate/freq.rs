//! Timelines, frequency tables and latency percentiles, for the whole run (`scope = all`)
//! and restricted to each incident's window (`scope = I1`, ...).
//!
//! Input: the report context (the run, its request and FPM rows, incidents, zone, bucket).
//! Output: `timeline.csv`, `timeline_causes.csv`, `by_cause.csv`, `by_upstream.csv`,
//! `by_host.csv`, `by_uri.csv`, `by_client.csv`, `by_pool.csv`, `latency.csv`. Invariants:
//! the `by_*` counts are tallied in one pass over the tagged request rows (`tally`: per
//! scope and key, never a row per scope), then sorted and joined by polars; the timelines'
//! come from polars group-bys; `by_pool.csv`'s are counted row by row (most FPM rows are
//! quiet rows, read by their heads); latency comes from the run's
//! log-linear histograms (relative error below 1%, because keeping every request's time
//! would grow with the input); rows are sorted by scope (all first, then incidents in
//! order), then count descending, then key.

use super::report::i64s;
use super::run::{metric_name, Run};
use super::tally::{CauseTally, Tally, Verdict};
use super::Cols;
use crate::correlate::incidents::IncidentIndex;
use crate::correlate::Incident;
use crate::model::time::format_rfc3339;
use crate::model::{Ts, Zone};
use crate::scan::traffic::{col as tcol, quantile, LAT_BUCKET_S, NBINS};
use polars::prelude::*;
use std::collections::{BTreeMap, HashMap};

pub struct Ctx<'a> {
    pub run: &'a Run,
    pub req: &'a DataFrame,
    pub fpm: &'a DataFrame,
    pub incidents: &'a [Incident],
    pub zone: &'a Zone,
    pub bucket_ms: i64,
    pub range: Option<(Ts, Ts)>,
}

/// URI folding: query and fragment dropped; path segments that are numbers, UUIDs, long hex
/// strings or long opaque tokens become `{n}`, `{uuid}`, `{hex}`, `{token}`; runs of 4+
/// digits inside a segment become `{n}`; then the user's `--uri-rule REGEX=>REPLACEMENT`.
pub fn normalise_uri(uri: &str, rules: &[(regex::Regex, String)]) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&fold_segment(seg));
    }
    if out.is_empty() {
        out.push('/');
    }
    for (re, rep) in rules {
        out = re.replace_all(&out, rep.as_str()).into_owned();
    }
    out
}

fn fold_segment(seg: &str) -> String {
    let b = seg.as_bytes();
    if b.is_empty() {
        return String::new();
    }
    if b.iter().all(u8::is_ascii_digit) {
        return "{n}".into();
    }
    let is_uuid = b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    if is_uuid {
        return "{uuid}".into();
    }
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) {
        return "{hex}".into();
    }
    let tokenish = b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_');
    if b.len() >= 24 && tokenish && b.iter().any(u8::is_ascii_digit) && b.iter().any(u8::is_ascii_alphabetic) {
        return "{token}".into();
    }
    // Runs of 4+ digits inside a segment (`img-123456.png`).
    let mut out = String::new();
    let mut digits = String::new();
    for ch in seg.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
        } else {
            out.push_str(if digits.len() >= 4 { "{n}" } else { &digits });
            digits.clear();
            out.push(ch);
        }
    }
    out.push_str(if digits.len() >= 4 { "{n}" } else { &digits });
    out
}

fn rules(run: &Run) -> Vec<(regex::Regex, String)> {
    run.meta
        .uri_rules
        .iter()
        .filter_map(|r| {
            let (re, rep) = r.split_once("=>")?;
            Some((regex::Regex::new(re).ok()?, rep.to_string()))
        })
        .collect()
}

/// The ranks of the scopes a time falls in: 0 (`all`), plus k + 1 for the incident k whose
/// window holds it (the first in start order, as `incidents::detect` assigns requests).
fn scope_ranks(ts: Ts, index: &IncidentIndex) -> impl Iterator<Item = u64> + '_ {
    std::iter::once(0).chain(index.at(ts).map(|k| k as u64 + 1))
}

pub fn tables(c: &Ctx) -> PolarsResult<Vec<(&'static str, DataFrame)>> {
    let mut out = timeline(c)?;
    out.extend(frequencies(c)?);
    out.push(("by_pool.csv", by_pool(c)?));
    out.push(("latency.csv", latency(c)?));
    Ok(out)
}

fn bucket_of(ts: Ts, b: i64) -> i64 {
    ts.div_euclid(b) * b
}

fn timeline(c: &Ctx) -> PolarsResult<Vec<(&'static str, DataFrame)>> {
    let b = c.bucket_ms;
    // Seconds come in time order, so buckets do too: each bucket's sums are built in place
    // and the map is built from the sorted list at once (an entry per second before).
    let mut sums: Vec<(i64, [u64; tcol::N])> = Vec::new();
    for (sec, row) in c.run.traffic.per_sec.iter() {
        let start = bucket_of(sec * 1000, b);
        if sums.last().is_none_or(|l| l.0 != start) {
            sums.push((start, [0; tcol::N]));
        }
        if let Some((_, e)) = sums.last_mut() {
            for (a, v) in e.iter_mut().zip(row) {
                *a += *v as u64;
            }
        }
    }
    let counts: BTreeMap<i64, [u64; tcol::N]> = sums.into_iter().collect();
    // Failing requests per bucket and cause (polars group-by over the tagged rows).
    let ts = i64s(c.req, "ts_ms")?;
    let buckets: Vec<Option<i64>> = ts.iter().map(|t| t.map(|t| bucket_of(t, b))).collect();
    let mut tagged = c.req.select(["outcome", "cause_class", "cause", "incident"])?;
    tagged.with_column(Column::new("bucket".into(), buckets))?;
    let failed = tagged.lazy().filter(col("outcome").eq(lit("failed")));
    let per_bucket = failed
        .clone()
        .group_by([col("bucket")])
        .agg([
            len().cast(DataType::UInt64).alias("failed"),
            col("incident").is_null().cast(DataType::UInt64).sum().alias("background"),
        ])
        .collect()?;
    let mut failed_by: HashMap<i64, (u64, u64)> = HashMap::new();
    for ((k, v), b) in i64s(&per_bucket, "bucket")?
        .into_iter()
        .zip(per_bucket.column("failed")?.u64()?.iter())
        .zip(per_bucket.column("background")?.cast(&DataType::UInt64)?.u64()?.iter())
    {
        failed_by.insert(k.unwrap_or(0), (v.unwrap_or(0), b.unwrap_or(0)));
    }
    let (lo, hi) = match c.range {
        Some((a, z)) => (bucket_of(a, b), bucket_of(z, b)),
        None => (0, -1),
    };
    let starts: Vec<i64> = if hi >= lo { (0..=(hi - lo) / b).map(|k| lo + k * b).collect() } else { vec![] };
    let get = |s: i64, k: usize| counts.get(&s).map_or(0, |r| r[k]);
    let s5xx = |s: i64| {
        [tcol::S500, tcol::S502, tcol::S503, tcol::S504, tcol::S5XX_OTHER].iter().map(|k| get(s, *k)).sum::<u64>()
    };
    let mut t = Cols::default();
    t.strs("bucket_start", starts.iter().map(|s| format_rfc3339(*s, c.zone)).collect())
        .u64("requests", starts.iter().map(|s| get(*s, tcol::TOTAL)).collect());
    for (k, name) in
        [(tcol::S1XX, "s1xx"), (tcol::S2XX, "s2xx"), (tcol::S3XX, "s3xx"), (tcol::S4XX, "s4xx"), (tcol::S499, "s499")]
    {
        t.u64(name, starts.iter().map(|s| get(*s, k)).collect());
    }
    t.u64("s5xx", starts.iter().map(|s| s5xx(*s)).collect());
    for (k, name) in [
        (tcol::S500, "s500"),
        (tcol::S502, "s502"),
        (tcol::S503, "s503"),
        (tcol::S504, "s504"),
        (tcol::RETRIED, "retried"),
    ] {
        t.u64(name, starts.iter().map(|s| get(*s, k)).collect());
    }
    t.u64("failed", starts.iter().map(|s| failed_by.get(s).map_or(0, |x| x.0)).collect())
        // Failures outside every incident.
        .u64("background", starts.iter().map(|s| failed_by.get(s).map_or(0, |x| x.1)).collect())
        .f64(
            "error_rate",
            starts
                .iter()
                .map(|s| {
                    let n = get(*s, tcol::TOTAL);
                    (n > 0).then(|| (s5xx(*s) + get(*s, tcol::S499)) as f64 / n as f64)
                })
                .collect(),
        );
    let timeline = t.frame()?;
    let zone = c.zone.clone();
    // Like the timeline, only the run's range (stamps far from the rest are left out).
    let by_cause = failed
        .filter(col("bucket").gt_eq(lit(lo)).and(col("bucket").lt_eq(lit(hi))))
        .group_by([col("bucket"), col("cause_class"), col("cause")])
        .agg([len().cast(DataType::UInt64).alias("failed")])
        .sort(["bucket", "cause_class", "cause"], SortMultipleOptions::default())
        .collect()?;
    let bstr: Vec<String> =
        i64s(&by_cause, "bucket")?.into_iter().map(|b| format_rfc3339(b.unwrap_or(0), &zone)).collect();
    let mut tc = by_cause.select(["cause_class", "cause", "failed"])?;
    tc.insert_column(0, Column::new("bucket_start".into(), bstr))?;
    Ok(vec![("timeline.csv", timeline), ("timeline_causes.csv", tc)])
}

/// The tallies of every frequency table, from one pass over the request rows: each row
/// counts in `all` and in the incident whose window holds it.
struct Tallies<'a> {
    by_cause: CauseTally<'a>,
    upstream: Tally<'a>,
    host: Tally<'a>,
    uri: Tally<'a>,
    client: Tally<'a>,
    machine: Tally<'a>,
    /// Scope names by rank: `all`, then the incidents.
    scopes: Vec<String>,
}

fn tally<'a>(c: &Ctx<'a>, patterns: &'a [String], pattern_of: &[u32]) -> PolarsResult<Tallies<'a>> {
    let index = IncidentIndex::new(c.incidents);
    let col = |n: &str| c.req.column(n).and_then(|s| s.str());
    let (outcome, cls, cause, conf) = (col("outcome")?, col("cause_class")?, col("cause")?, col("confidence")?);
    let (time, uri, client, vhost) = (col("time")?, col("uri")?, col("client")?, col("vhost")?);
    let (addr, line_up, machine) = (col("upstream_addr")?, col("upstream")?, col("machine")?);
    let ts = c.req.column("ts_ms")?.i64()?;
    let mut t = Tallies {
        by_cause: CauseTally::default(),
        upstream: Tally::default(),
        host: Tally::default(),
        uri: Tally::default(),
        client: Tally::default(),
        machine: Tally::default(),
        scopes: std::iter::once("all".to_string()).chain(c.incidents.iter().map(|i| i.id.clone())).collect(),
    };
    for i in 0..c.req.height() {
        let v = Verdict { outcome: outcome.get(i), class: cls.get(i), cause: cause.get(i) };
        // The peer that gave the final answer: the last `$upstream_addr` item, else the
        // peer named by the request's nginx error line.
        let up = addr
            .get(i)
            .and_then(|a| a.split([',', ' ']).rfind(|s| !s.is_empty() && *s != ":"))
            .or_else(|| line_up.get(i).map(crate::model::event::upstream_peer))
            .unwrap_or("-");
        let pattern = patterns[pattern_of[i] as usize].as_str();
        let (when, stamp) = (ts.get(i), time.get(i));
        // Requests nginx refused itself count in `all` only: they never belong to an incident.
        let scoped = if v.outcome == Some("refused") { None } else { index.at(when.unwrap_or(0)) };
        for rank in std::iter::once(0).chain(scoped.map(|k| k as u64 + 1)) {
            t.by_cause.add(rank, v, conf.get(i), when, stamp);
            t.upstream.add(rank, up, v);
            t.host.add(rank, vhost.get(i).unwrap_or("-"), v);
            t.uri.add(rank, pattern, v);
            t.uri.add_example(rank, pattern, uri.get(i));
            t.client.add(rank, client.get(i).unwrap_or("-"), v);
            t.machine.add(rank, machine.get(i).unwrap_or("-"), v);
        }
    }
    Ok(t)
}

/// Each request's URI pattern, as an index into the distinct patterns (a URI is folded once).
fn patterns(c: &Ctx) -> PolarsResult<(Vec<String>, Vec<u32>)> {
    let rules = rules(c.run);
    let mut seen: HashMap<Option<&str>, u32> = HashMap::new();
    let mut patterns = Vec::new();
    let mut of = Vec::with_capacity(c.req.height());
    for uri in c.req.column("uri")?.str()?.iter() {
        let k = *seen.entry(uri).or_insert_with(|| {
            patterns.push(uri.map(|u| normalise_uri(u, &rules)).unwrap_or_else(|| "-".into()));
            patterns.len() as u32 - 1
        });
        of.push(k);
    }
    Ok((patterns, of))
}

/// Per (scope, key): failed, retried, refused, the most frequent cause of the failures.
fn counts_with_top(t: &Tally, key: &str, scopes: &[String]) -> PolarsResult<LazyFrame> {
    Ok(t.counts_with_top(key, scopes)?.lazy())
}

fn finish(lf: LazyFrame, key: &str, extra: &[&str]) -> PolarsResult<DataFrame> {
    let mut sel = vec![
        col("scope"),
        col(key),
        col("failed"),
        col("retried"),
        col("refused"),
        col("top_cause_class"),
        col("top_cause"),
    ];
    sel.extend(extra.iter().map(|e| col(*e)));
    lf.sort_by_exprs(
        [col("scope_rank"), col("failed"), col("retried"), col("refused"), col(key)],
        SortMultipleOptions::default().with_order_descending_multi([false, true, true, true, false]),
    )
    .select(sel)
    .collect()
}

fn frequencies(c: &Ctx) -> PolarsResult<Vec<(&'static str, DataFrame)>> {
    let (patterns, pattern_of) = patterns(c)?;
    let t = tally(c, &patterns, &pattern_of)?;
    let scopes = &t.scopes;
    let mut out = Vec::new();
    // by_cause: share and confidence split per scope.
    let by_cause = t
        .by_cause
        .frame(scopes)?
        .lazy()
        .with_column(
            (col("failed").cast(DataType::Float64)
                / col("failed").sum().over([col("scope_rank")])?.cast(DataType::Float64))
            .alias("share"),
        )
        .sort_by_exprs(
            [col("scope_rank"), col("failed"), col("retried"), col("refused"), col("cause_class"), col("cause")],
            SortMultipleOptions::default().with_order_descending_multi([false, true, true, true, false, false]),
        )
        .select([
            col("scope"),
            col("cause_class"),
            col("cause"),
            col("failed"),
            col("retried"),
            col("refused"),
            col("share"),
            col("high"),
            col("medium"),
            col("low"),
            col("first_seen"),
            col("last_seen"),
        ])
        .collect()?;
    out.push(("by_cause.csv", by_cause));

    // by_upstream: with whole-run attempt totals from the counters.
    let peers = &c.run.traffic.peers;
    let mut names: Vec<&Box<[u8]>> = peers.keys().collect();
    names.sort();
    let att = Cols::default()
        .strs("upstream", names.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect())
        .u64("attempts", names.iter().map(|n| peers[*n].attempts).collect())
        .u64("failed_attempts", names.iter().map(|n| peers[*n].failed).collect())
        .frame()?;
    let lf = counts_with_top(&t.upstream, "upstream", scopes)?.join(
        att.lazy(),
        [col("upstream")],
        [col("upstream")],
        JoinArgs::new(JoinType::Left),
    );
    out.push(("by_upstream.csv", finish(lf, "upstream", &["attempts", "failed_attempts"])?));

    // by_host: with whole-run request totals.
    let hosts = &c.run.traffic.hosts;
    let mut hn: Vec<&Box<[u8]>> = hosts.keys().collect();
    hn.sort();
    let tot = Cols::default()
        .strs("host", hn.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect())
        .u64("requests", hn.iter().map(|n| hosts[*n].requests).collect())
        .frame()?;
    let lf = counts_with_top(&t.host, "host", scopes)?
        .join(tot.lazy(), [col("host")], [col("host")], JoinArgs::new(JoinType::Left))
        .with_column(
            (col("failed").cast(DataType::Float64) / col("requests").cast(DataType::Float64)).alias("error_rate"),
        );
    out.push(("by_host.csv", finish(lf, "host", &["requests", "error_rate"])?));

    let ex = t.uri.examples("uri_pattern", "example", scopes)?.lazy();
    let by = [col("scope_rank"), col("scope"), col("uri_pattern")];
    let lf = counts_with_top(&t.uri, "uri_pattern", scopes)?.join(ex, by.clone(), by, JoinArgs::new(JoinType::Left));
    out.push(("by_uri.csv", finish(lf, "uri_pattern", &["example"])?));
    out.push(("by_client.csv", finish(counts_with_top(&t.client, "client", scopes)?, "client", &[])?));
    // by_machine: which hosts of a fleet (`merge`) an incident hit, their share of it, and
    // each host's whole-run requests where known.
    let per = c.run.machine_requests();
    let tot = Cols::default()
        .strs("machine", per.keys().cloned().collect())
        .u64("requests", per.values().copied().collect())
        .frame()?;
    let lf = counts_with_top(&t.machine, "machine", scopes)?
        .with_column(
            (col("failed").cast(DataType::Float64)
                / col("failed").sum().over([col("scope_rank")])?.cast(DataType::Float64))
            .alias("share"),
        )
        .join(tot.lazy(), [col("machine")], [col("machine")], JoinArgs::new(JoinType::Left))
        .with_column(
            (col("failed").cast(DataType::Float64) / col("requests").cast(DataType::Float64)).alias("error_rate"),
        );
    out.push(("by_machine.csv", finish(lf, "machine", &["share", "requests", "error_rate"])?));
    Ok(out)
}

/// Per (scope, pool, script): FPM events of the kinds that explain failures, and all. Counted
/// row by row, the held rows read in place from their frame and the quiet ones (children
/// started and exited cleanly: most of a busy FPM log) by their heads, never as a frame.
fn by_pool(c: &Ctx) -> PolarsResult<DataFrame> {
    use crate::model::FpmKind as K;
    use std::str::FromStr;
    const KINDS: [(K, &str); 6] = [
        (K::ExecutingTooSlow, "slow"),
        (K::ExecutionTimedOut, "timed_out"),
        (K::ChildSignal, "exited_on_signal"),
        (K::ChildExitCode, "exited_with_code"),
        (K::MaxChildren, "max_children_reached"),
        (K::SlowlogTrace, "slowlog_traces"),
    ];
    let index = IncidentIndex::new(c.incidents);
    let ts = i64s(c.fpm, "ts_ms")?;
    // Read in place: most FPM rows of a noisy log have no pool (master notices).
    let sc_of = |n: &str| -> PolarsResult<StringChunked> { Ok(c.fpm.column(n)?.str()?.clone()) };
    let (pool, script, event) = (sc_of("pool")?, sc_of("script")?, sc_of("event")?);
    // (scope rank, pool, script) -> the KINDS' counts, then every event. Keys borrowed from
    // the rows and Fx-hashed (three owned strings and SipHash per row and scope before: the
    // scope's name follows from its rank, and the groups are sorted before they leave).
    let mut groups: rustc_hash::FxHashMap<(u64, &str, &str), [u64; 7]> = Default::default();
    let mut add = |ts: Ts, pool, script: Option<_>, kind: Option<K>| {
        let k = KINDS.iter().position(|x| Some(x.0) == kind);
        for r in scope_ranks(ts, &index) {
            let e = groups.entry((r, pool, script.unwrap_or("-"))).or_default();
            if let Some(k) = k {
                e[k] += 1;
            }
            e[6] += 1;
        }
    };
    for (i, t) in ts.iter().enumerate() {
        let Some(p) = pool.get(i) else { continue };
        add(t.unwrap_or(0), p, script.get(i), event.get(i).and_then(|e| K::from_str(e).ok()));
    }
    if let Some(q) = &c.run.events.quiet {
        for h in q.rows.fpm_heads() {
            if let Some(p) = h.pool {
                add(h.ts, p, h.script, Some(h.kind));
            }
        }
    }
    let mut rows: Vec<_> = groups.into_iter().collect();
    rows.sort_by(|(a, x), (b, y)| {
        (a.0, std::cmp::Reverse(x[6]), a.1, a.2).cmp(&(b.0, std::cmp::Reverse(y[6]), b.1, b.2))
    });
    let scope = |r: u64| match r {
        0 => "all".to_string(),
        k => c.incidents[k as usize - 1].id.clone(),
    };
    let mut out = Cols::default();
    out.str("scope", rows.iter().map(|r| Some(scope(r.0 .0))).collect())
        .str("pool", rows.iter().map(|r| Some(r.0 .1.to_string())).collect())
        .str("script", rows.iter().map(|r| Some(r.0 .2.to_string())).collect());
    for (k, (_, name)) in KINDS.iter().enumerate() {
        out.u64(name, rows.iter().map(|r| r.1[k]).collect());
    }
    out.u64("events", rows.iter().map(|r| r.1[6]).collect()).frame()
}

/// (dimension rank, key, metric): key is 0 for "all", the bucket start (ms) for "bucket",
/// the incident's index, or the peer's index in name order.
type LatKey = (u8, i64, i64);
/// (dimension, key, metric, count, [p50, p90, p99, max]).
type LatRow = (&'static str, String, &'static str, u64, [Option<f64>; 4]);

/// Latency percentiles per timeline bucket, per incident and per upstream.
///
/// The scan keeps histograms per minute (`LAT_BUCKET_S`); a timeline bucket shorter than
/// that gets the percentiles of its minute.
fn latency(c: &Ctx) -> PolarsResult<DataFrame> {
    let index = IncidentIndex::new(c.incidents);
    let t = &c.run.traffic;
    let lat_ms = LAT_BUCKET_S * 1000;
    // Dense histograms: NBINS counters per group.
    // Hashed while filling (one entry per minute and bin), ordered once at the end.
    let mut groups: rustc_hash::FxHashMap<LatKey, (Vec<u64>, u32)> = Default::default();
    let dense = || (vec![0u64; NBINS], 0u32);
    let width = c.bucket_ms.max(lat_ms);
    // Bucket rows only over the run's range, as in the timeline.
    let (lo, hi) = c.range.map_or((0, -1), |(a, z)| (bucket_of(a, width), bucket_of(z, width)));
    for (minute, h) in &t.lat.minutes {
        let ts = minute * lat_ms;
        let bucket = bucket_of(ts, width);
        let overlapping = index.overlapping(ts, ts + lat_ms - 1);
        let decode = crate::scan::layout::HistKey::decode;
        // A minute's bins are sorted by metric: each group is looked up once per minute and
        // metric, not once per bin (a lookup per bin was most of this table's time).
        for bins in h.bins.chunk_by(|a, b| decode(a.0).metric == decode(b.0).metric) {
            let metric = decode(bins[0].0).metric as i64;
            let mx = h.max[metric as usize];
            let mut add = |dim: u8, key: i64| {
                let e = groups.entry((dim, key, metric)).or_insert_with(dense);
                for &(idx, n) in bins {
                    e.0[decode(idx).bin as usize] += n as u64;
                }
                e.1 = e.1.max(mx);
            };
            add(0, 0);
            if (lo..=hi).contains(&bucket) {
                add(1, bucket);
            }
            for &i in &overlapping {
                add(2, i as i64);
            }
        }
    }
    let mut peers: Vec<(&Box<[u8]>, &crate::scan::traffic::PeerTotals)> =
        t.peers.iter().filter(|p| !p.1.hist.is_empty()).collect();
    peers.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (_, p)) in peers.iter().enumerate() {
        let e = groups.entry((3, i as i64, 1)).or_insert_with(dense);
        for (b, n) in p.hist.iter() {
            e.0[b as usize] += n;
        }
    }
    let label = |dim: u8, key: i64| -> String {
        match dim {
            0 => "all".into(),
            1 => format_rfc3339(key, c.zone),
            2 => c.incidents[key as usize].id.clone(),
            _ => String::from_utf8_lossy(peers[key as usize].0).into_owned(),
        }
    };
    let dims = ["all", "bucket", "incident", "upstream"];
    let mut rows: Vec<LatRow> = Vec::new();
    let mut groups: Vec<(LatKey, (Vec<u64>, u32))> = groups.into_iter().collect();
    groups.sort_unstable_by_key(|g| g.0);
    for ((dim, key, metric), (bins, mx)) in &groups {
        let v: Vec<(u16, u64)> =
            bins.iter().enumerate().filter(|(_, n)| **n > 0).map(|(b, n)| (b as u16, *n)).collect();
        let count = v.iter().map(|x| x.1).sum();
        // Per-peer histograms have no exact maximum: the top bin's value.
        let max =
            if *dim == 3 { v.iter().map(|x| x.0).max().map(crate::scan::traffic::bin_value) } else { Some(*mx as f64) };
        // A bin's midpoint can lie above the exact maximum: never report p99 > max.
        let q = |p: f64| quantile(&v, p).map(|x| max.map_or(x, |m| x.min(m)));
        rows.push((
            dims[*dim as usize],
            label(*dim, *key),
            metric_name(*metric),
            count,
            [q(0.5), q(0.9), q(0.99), max],
        ));
    }
    let mut b = Cols::default();
    b.strs("dimension", rows.iter().map(|r| r.0.to_string()).collect())
        .strs("key", rows.iter().map(|r| r.1.clone()).collect())
        .strs("metric", rows.iter().map(|r| r.2.to_string()).collect())
        .u64("count", rows.iter().map(|r| r.3).collect());
    for (i, name) in ["p50_ms", "p90_ms", "p99_ms", "max_ms"].iter().enumerate() {
        b.f64(name, rows.iter().map(|r| r.4[i]).collect());
    }
    b.frame()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_folding() {
        let none: Vec<(regex::Regex, String)> = vec![];
        assert_eq!(normalise_uri("/product/12345?ref=home", &none), "/product/{n}");
        assert_eq!(normalise_uri("/u/3f2a1c4e-9b7d-4e21-8c3a-0f1e2d3c4b5a/avatar", &none), "/u/{uuid}/avatar");
        assert_eq!(normalise_uri("/static/img-123456.png", &none), "/static/img-{n}.png");
        assert_eq!(normalise_uri("/v2/items/abc", &none), "/v2/items/abc");
        assert_eq!(normalise_uri("/f/0123456789abcdef0123", &none), "/f/{hex}");
        assert_eq!(normalise_uri("/t/eyJhbGciOiJIUzI1NiJ9abc123", &none), "/t/{token}");
        assert_eq!(normalise_uri("", &none), "/");
        let r = vec![(regex::Regex::new("^/shop/[a-z-]+").unwrap(), "/shop/{slug}".to_string())];
        assert_eq!(normalise_uri("/shop/red-shoes", &r), "/shop/{slug}");
    }
}
