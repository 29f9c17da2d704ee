//! Comparing runs: two sides (A = baseline, B), and the history of many runs.
//!
//! Input: runs with their reports. Output: comparison tables (polars full joins of the two
//! sides' frequency tables) and history rows. Invariants: a key present on one side only
//! counts 0 on the other and is marked `new` or `gone`; rows are sorted by the size of the
//! change (absolute delta, descending), then key, so the biggest movers lead.

use super::report::{f64s, i64s, strs, Report};
use super::run::Run;
use super::Cols;
use crate::model::time::format_rfc3339;
use crate::model::Ts;
use crate::scan::traffic::col as tcol;
use polars::prelude::*;

pub struct Side<'a> {
    pub label: String,
    pub run: &'a Run,
    pub report: Report,
}

impl Side<'_> {
    pub fn requests(&self) -> u64 {
        self.run.traffic.per_sec.total(tcol::TOTAL)
    }

    pub fn failed(&self) -> u64 {
        let df = &self.report.tables.by_cause;
        let (s, f) = (strs(df, "scope").unwrap_or_default(), i64s(df, "failed").unwrap_or_default());
        (0..df.height()).filter(|&i| s[i].as_deref() == Some("all")).map(|i| f[i].unwrap_or(0) as u64).sum()
    }

    pub fn range(&self) -> Option<(Ts, Ts)> {
        self.run.range()
    }
}

/// `scope = all` rows of a frequency table: key columns + `failed`.
fn counts(side: &Side, pick: Pick, keys: &[&str]) -> PolarsResult<DataFrame> {
    let df = pick(&side.report.tables).clone();
    if df.height() == 0 {
        let mut c = Cols::default();
        for k in keys {
            c.strs(k, vec![]);
        }
        return c.u64("failed", vec![]).frame();
    }
    let mut sel: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    sel.push(col("failed").cast(DataType::UInt64));
    df.lazy().filter(col("scope").eq(lit("all"))).select(sel).collect()
}

/// Rates within this relative difference are the `same`.
const SAME_WITHIN: f64 = 0.01;

/// `new`, `gone`, or how the rate per request moved from A (`a` of `ra` requests) to B: two
/// windows of different traffic are compared by rate, not by count (`up +387` while the rate
/// fell is wrong). Without request counts on both sides, the counts.
pub fn change(a: u64, b: u64, ra: f64, rb: f64) -> &'static str {
    let (x, y) = if ra > 0.0 && rb > 0.0 { (a as f64 / ra, b as f64 / rb) } else { (a as f64, b as f64) };
    match (a, b) {
        (0, 0) => "same",
        (0, _) => "new",
        (_, 0) => "gone",
        _ if (y - x).abs() <= SAME_WITHIN * x.max(y) => "same",
        _ if y > x => "up",
        _ => "down",
    }
}

/// Full join of A's and B's counts on `keys`, with delta, ratio, change, and failures per
/// 1,000 requests when `per_1k` is set.
/// One frequency table of a report.
type Pick = fn(&crate::aggregate::report::Tables) -> &DataFrame;

fn joined(a: &Side, b: &Side, name: Pick, keys: &[&str], per_1k: bool) -> PolarsResult<DataFrame> {
    let ka: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let left = counts(a, name, keys)?.lazy().rename(["failed"], ["a_failed"], true);
    let right = counts(b, name, keys)?.lazy().rename(["failed"], ["b_failed"], true);
    let j = left
        .join(right, ka.clone(), ka, JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns))
        .with_columns([col("a_failed").fill_null(lit(0u64)), col("b_failed").fill_null(lit(0u64))])
        .collect()?;
    let av: Vec<u64> = i64s(&j, "a_failed")?.into_iter().map(|v| v.unwrap_or(0) as u64).collect();
    let bv: Vec<u64> = i64s(&j, "b_failed")?.into_iter().map(|v| v.unwrap_or(0) as u64).collect();
    let (ra, rb) = (a.requests() as f64, b.requests() as f64);
    let mut out = j.select(keys.iter().copied())?;
    let mut extra = Cols::default();
    extra.u64("a_failed", av.clone()).u64("b_failed", bv.clone());
    if per_1k {
        extra
            .f64("a_per_1k", av.iter().map(|x| (ra > 0.0).then(|| *x as f64 * 1000.0 / ra)).collect())
            .f64("b_per_1k", bv.iter().map(|x| (rb > 0.0).then(|| *x as f64 * 1000.0 / rb)).collect());
        let (ta, tb) = (av.iter().sum::<u64>() as f64, bv.iter().sum::<u64>() as f64);
        extra
            .f64("a_share", av.iter().map(|x| (ta > 0.0).then(|| *x as f64 / ta)).collect())
            .f64("b_share", bv.iter().map(|x| (tb > 0.0).then(|| *x as f64 / tb)).collect());
    }
    extra
        .i64("delta", av.iter().zip(&bv).map(|(x, y)| Some(*y as i64 - *x as i64)).collect())
        .u64("_size", av.iter().zip(&bv).map(|(x, y)| x.abs_diff(*y)).collect())
        .f64("ratio", av.iter().zip(&bv).map(|(x, y)| (*x > 0).then(|| *y as f64 / *x as f64)).collect())
        .strs("change", av.iter().zip(&bv).map(|(x, y)| change(*x, *y, ra, rb).to_string()).collect());
    for c in extra.frame()?.columns() {
        out.with_column(c.clone())?;
    }
    let mut sort: Vec<Expr> = vec![col("_size")];
    let mut desc = vec![true];
    for k in keys {
        sort.push(col(*k));
        desc.push(false);
    }
    let mut sorted =
        out.lazy().sort_by_exprs(sort, SortMultipleOptions::default().with_order_descending_multi(desc)).collect()?;
    sorted.drop_in_place("_size")?;
    Ok(sorted)
}

/// Latency percentiles of the whole run, A against B.
fn latency(a: &Side, b: &Side) -> PolarsResult<DataFrame> {
    let pick = |s: &Side| -> Vec<(String, String, Option<f64>)> {
        let df = &s.report.tables.latency;
        let (d, m) = (strs(df, "dimension").unwrap_or_default(), strs(df, "metric").unwrap_or_default());
        let mut out = Vec::new();
        for q in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            let v = f64s(df, q).unwrap_or_default();
            for i in 0..df.height() {
                if d[i].as_deref() == Some("all") {
                    out.push((m[i].clone().unwrap_or_default(), q.to_string(), v[i]));
                }
            }
        }
        out
    };
    let (pa, pb) = (pick(a), pick(b));
    let mut keys: Vec<(String, String)> = pa.iter().chain(&pb).map(|x| (x.0.clone(), x.1.clone())).collect();
    keys.sort();
    keys.dedup();
    let get = |p: &[(String, String, Option<f64>)], k: &(String, String)| {
        p.iter().find(|x| x.0 == k.0 && x.1 == k.1).and_then(|x| x.2)
    };
    let av: Vec<Option<f64>> = keys.iter().map(|k| get(&pa, k)).collect();
    let bv: Vec<Option<f64>> = keys.iter().map(|k| get(&pb, k)).collect();
    Cols::default()
        .strs("metric", keys.iter().map(|k| k.0.clone()).collect())
        .strs("quantile", keys.iter().map(|k| k.1.trim_end_matches("_ms").to_string()).collect())
        .f64("a_ms", av.clone())
        .f64("b_ms", bv.clone())
        .f64("delta_ms", av.iter().zip(&bv).map(|(x, y)| Some((*y)? - (*x)?)).collect())
        .f64("ratio", av.iter().zip(&bv).map(|(x, y)| Some((*y)? / (*x)?).filter(|r: &f64| r.is_finite())).collect())
        .frame()
}

/// Overall figures side by side.
pub fn summary(a: &Side, b: &Side) -> PolarsResult<DataFrame> {
    let fig = |s: &Side| -> Vec<f64> {
        let inc = &s.report.incidents;
        let req = s.requests() as f64;
        let failed = s.failed() as f64;
        let retried = s.run.traffic.per_sec.total(tcol::RETRIED) as f64;
        vec![
            req,
            failed,
            if req > 0.0 { failed * 1000.0 / req } else { 0.0 },
            retried,
            inc.len() as f64,
            inc.iter().map(|x| (x.end - x.start) as f64 / 1000.0).sum(),
            inc.iter().map(|x| (x.end - x.start) as f64 / 1000.0).fold(0.0, f64::max),
            inc.iter().map(|x| x.peak_per_min as f64).fold(0.0, f64::max),
        ]
    };
    let names = [
        "requests",
        "failed",
        "failed_per_1k",
        "retried",
        "incidents",
        "incident_seconds",
        "longest_incident_s",
        "max_peak_per_min",
    ];
    let (fa, fb) = (fig(a), fig(b));
    Cols::default()
        .strs("measure", names.iter().map(|s| s.to_string()).collect())
        .f64("a", fa.iter().map(|v| Some(*v)).collect())
        .f64("b", fb.iter().map(|v| Some(*v)).collect())
        .f64("delta", fa.iter().zip(&fb).map(|(x, y)| Some(y - x)).collect())
        .f64("ratio", fa.iter().zip(&fb).map(|(x, y)| (*x != 0.0).then(|| y / x)).collect())
        .frame()
}

fn incidents(a: &Side, b: &Side) -> PolarsResult<DataFrame> {
    let mut c = Cols::default();
    let rows: Vec<(&str, &crate::correlate::Incident, &crate::model::Zone)> = a
        .report
        .incidents
        .iter()
        .map(|x| ("A", x, &a.report.zone))
        .chain(b.report.incidents.iter().map(|x| ("B", x, &b.report.zone)))
        .collect();
    c.strs("side", rows.iter().map(|r| r.0.to_string()).collect())
        .strs("incident", rows.iter().map(|r| r.1.id.clone()).collect())
        .strs("start", rows.iter().map(|r| format_rfc3339(r.1.start, r.2)).collect())
        .strs("end", rows.iter().map(|r| format_rfc3339(r.1.end, r.2)).collect())
        .f64("duration_s", rows.iter().map(|r| Some((r.1.end - r.1.start) as f64 / 1000.0)).collect())
        .u64("failed", rows.iter().map(|r| r.1.failed).collect())
        .u64("peak_per_min", rows.iter().map(|r| r.1.peak_per_min).collect())
        .strs(
            "top_cause",
            rows.iter().map(|r| r.1.causes.first().map(|c| c.1.as_str()).unwrap_or("").to_string()).collect(),
        );
    c.frame()
}

pub fn compare_tables(a: &Side, b: &Side) -> PolarsResult<Vec<(&'static str, DataFrame)>> {
    Ok(vec![
        ("compare_summary.csv", summary(a, b)?),
        ("compare_causes.csv", joined(a, b, |t| &t.by_cause, &["cause_class", "cause"], true)?),
        ("compare_upstreams.csv", joined(a, b, |t| &t.by_upstream, &["upstream"], false)?),
        ("compare_hosts.csv", joined(a, b, |t| &t.by_host, &["host"], false)?),
        ("compare_uris.csv", joined(a, b, |t| &t.by_uri, &["uri_pattern"], false)?),
        ("compare_latency.csv", latency(a, b)?),
        ("compare_incidents.csv", incidents(a, b)?),
    ])
}

/// `history.csv`: one row per run per cause, runs ordered by the start of their range.
/// One row per run per cause (the whole run's failures), runs ordered by the start of
/// their ranges; from each run's `summary.json` alone.
pub fn history(runs: &[super::store::RunSummary]) -> PolarsResult<DataFrame> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| (runs[i].start_ms, runs[i].label.clone()));
    let mut c: [Vec<String>; 5] = Default::default();
    let (mut req, mut failed, mut total, mut per) = (vec![], vec![], vec![], vec![]);
    for &i in &order {
        let s = &runs[i];
        for (cls, cause, n) in s.causes.iter().filter(|c| c.2 > 0) {
            for (v, x) in c.iter_mut().zip([&s.label, &s.start, &s.end, cls, cause]) {
                v.push(x.to_string());
            }
            req.push(s.requests);
            total.push(s.failed);
            failed.push(*n);
            per.push((s.requests > 0).then(|| *n as f64 * 1000.0 / s.requests as f64));
        }
    }
    let [run, start, end, cls, cause] = c;
    Cols::default()
        .strs("run", run)
        .strs("start", start)
        .strs("end", end)
        .u64("requests", req)
        .u64("failed_total", total)
        .strs("cause_class", cls)
        .strs("cause", cause)
        .u64("failed", failed)
        .f64("per_1k", per)
        .frame()
}

#[cfg(test)]
mod tests {
    use super::change;

    #[test]
    fn change_follows_the_rate_not_the_count() {
        // Issue 15: 2,187 client aborts in 1.71 M requests against 1,800 in 1.41 M: more of
        // them, but a lower rate (1.28 -> 1.26 per 1,000).
        assert_eq!(change(1_800, 2_187, 1_406_000.0, 1_736_000.0), "down");
        assert_eq!(change(100, 300, 1_000.0, 1_000.0), "up");
        assert_eq!(change(1_000, 1_004, 1_000.0, 1_000.0), "same");
        assert_eq!((change(0, 5, 1.0, 1.0), change(5, 0, 1.0, 1.0)), ("new", "gone"));
        // No request counts: the counts decide.
        assert_eq!(change(3, 5, 0.0, 0.0), "up");
    }
}
