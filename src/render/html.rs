//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network).
//!
//! Input: a `Run` and its `Report`. Output: HTML with the header (range, zone, inputs,
//! diagnostics), the incidents (each with its own timeline and causes), the charts (failures
//! by cause, status and error rate, latency), the frequency tables (top N plus "others"),
//! and per cause its meaning, fix and evidence samples (raw lines with file:line).
//! Invariants: every string from a log is escaped (`svg::esc`); sizes are capped (top N
//! rows, samples per cause, chart bars), so the page stays small whatever the input.

use super::svg::{self, color, esc, Series};
use super::{write_atomic, RenderError};
use crate::aggregate::report::{f64s, i64s, strs, Report};
use crate::aggregate::run::Run;
use crate::model::time::format_rfc3339;
use crate::model::Ts;
use polars::prelude::DataFrame;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

const CAUSES: &str = include_str!("causes.tsv");
const MAX_BARS: usize = 360;
const SAMPLES: usize = 5;

pub const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1em 1.5em;color:#222}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#555}.warn{color:#a33}.muted{color:#777}
svg.chart{width:100%;height:auto;display:block;margin:.5em 0}
svg .ct{font-size:14px;font-weight:600}svg .ax{font-size:11px;fill:#555}svg .lg{font-size:12px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:.5em;font-size:12px;margin:.3em 0}
.incident{border:1px solid #ccc;border-radius:4px;padding:.2em 1em;margin:1em 0;page-break-inside:avoid}
@media print{body{max-width:none;font-size:11px}h2{page-break-after:avoid}.incident,svg.chart{page-break-inside:avoid}}
"#;

fn cause_texts() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    CAUSES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("cause\t"))
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, (f.next()?, f.next()?)))
        })
        .collect()
}

fn table_of<'a>(r: &'a Report, name: &str) -> Option<&'a DataFrame> {
    r.tables.iter().find(|t| t.0 == name).map(|t| &t.1)
}

/// An HTML table of `cols` of the `scope = all` rows of a frequency table, top `n` rows by
/// order plus an "others" row summing the numeric columns.
fn freq_table(df: &DataFrame, key: &str, cols: &[&str], n: usize) -> String {
    let Ok(scope) = strs(df, "scope") else { return String::new() };
    let idx: Vec<usize> = (0..df.height()).filter(|&i| scope[i].as_deref() == Some("all")).collect();
    let mut s = String::from("<table><tr>");
    let mut heads = vec![key];
    heads.extend_from_slice(cols);
    for h in &heads {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>");
    let cell = |c: &str, i: usize| -> (String, Option<f64>) {
        if let Ok(v) = strs(df, c) {
            return (v[i].clone().unwrap_or_default(), None);
        }
        if let Ok(v) = f64s(df, c) {
            return match v[i] {
                Some(x) if c.contains("rate") || c == "share" => (format!("{:.1}%", x * 100.0), Some(x)),
                Some(x) if x.fract() == 0.0 => (format!("{x:.0}"), Some(x)),
                Some(x) => (format!("{x:.2}"), Some(x)),
                None => (String::new(), None),
            };
        }
        (String::new(), None)
    };
    for &i in idx.iter().take(n) {
        s.push_str("<tr>");
        for h in &heads {
            let (text, num) = cell(h, i);
            let _ = write!(s, "<td{}>{}</td>", if num.is_some() { " class=\"n\"" } else { "" }, esc(&text));
        }
        s.push_str("</tr>");
    }
    if idx.len() > n {
        let rest = &idx[n..];
        let _ = write!(s, "<tr><td class=\"muted\">others ({} rows)</td>", rest.len());
        for h in cols {
            let sum: Option<f64> = if matches!(*h, "failed" | "retried" | "requests" | "attempts" | "failed_attempts") {
                f64s(df, h).ok().map(|v| rest.iter().map(|&i| v[i].unwrap_or(0.0)).sum())
            } else {
                None
            };
            match sum {
                Some(x) => {
                    let _ = write!(s, "<td class=\"n\">{x:.0}</td>");
                }
                None => s.push_str("<td></td>"),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// Merge adjacent buckets so a chart has at most `MAX_BARS` bars.
fn rebucket(labels: Vec<String>, series: Vec<Vec<f64>>) -> (Vec<String>, Vec<Vec<f64>>) {
    let n = labels.len();
    if n <= MAX_BARS {
        return (labels, series);
    }
    let k = n.div_ceil(MAX_BARS);
    let labels = labels.into_iter().step_by(k).collect();
    let series = series.into_iter().map(|v| v.chunks(k).map(|c| c.iter().sum()).collect()).collect();
    (labels, series)
}

fn cause_chart(title: &str, buckets: &[Ts], rows: &[(Ts, String, f64)], z: &crate::model::Zone) -> String {
    let mut causes: BTreeMap<String, f64> = BTreeMap::new();
    for (_, c, v) in rows {
        *causes.entry(c.clone()).or_insert(0.0) += v;
    }
    let mut order: Vec<(String, f64)> = causes.into_iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let pos: BTreeMap<Ts, usize> = buckets.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let mut series: Vec<Vec<f64>> = vec![vec![0.0; buckets.len()]; order.len()];
    for (b, c, v) in rows {
        if let (Some(&i), Some(k)) = (pos.get(b), order.iter().position(|o| &o.0 == c)) {
            series[k][i] += v;
        }
    }
    let step = if buckets.len() > 1 { buckets[1] - buckets[0] } else { 60_000 };
    let labels: Vec<String> = buckets.iter().map(|b| short_time(*b, z, step)).collect();
    let (labels, series) = rebucket(labels, series);
    let series: Vec<Series> = order
        .iter()
        .zip(series)
        .enumerate()
        .map(|(i, (o, v))| Series { name: o.0.clone(), color: color(i).into(), values: v })
        .collect();
    svg::stacked_bars(title, &labels, &series, "failed requests", None)
}

/// Axis label: `HH:MM:SS` for sub-minute buckets, else `MM-DD HH:MM`.
fn short_time(ts: Ts, z: &crate::model::Zone, step: i64) -> String {
    let t = format_rfc3339(ts, z);
    let r = if step < 60_000 { t.get(11..19) } else { t.get(5..16) };
    r.map(|x| x.replace('T', " ")).unwrap_or(t)
}

pub fn render(run: &Run, r: &Report) -> String {
    let z = &r.zone;
    let texts = cause_texts();
    let sum = super::json::build(run, r);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>upcause report: {}</title><style>{CSS}</style></head><body>",
        esc(&run.meta.name)
    );
    let _ = write!(h, "<h1>upcause report: {}</h1>", esc(&run.meta.name));
    let range =
        r.range.map(|(a, b)| format!("{} .. {}", format_rfc3339(a, z), format_rfc3339(b, z))).unwrap_or_default();
    let _ = write!(
        h,
        "<p class=\"meta\">Time range <b>{}</b>; zone <b>{}</b> ({}: {}); machines {}.<br>Read {} files, {} lines ({} parsed, {} malformed, {} skipped); {} files skipped. {} requests, <b>{} failed</b>, {} retried, {} refused by nginx itself (limit_req/limit_conn, not upstream failures). Confidence of the failing requests: high {}, medium {}, low {}.</p>",
        esc(&range),
        esc(&run.meta.zone.zone),
        esc(&run.meta.zone.chosen_by),
        esc(&run.meta.zone.detail),
        esc(&run.meta.machines.join(", ")),
        sum.totals.files,
        sum.totals.lines,
        sum.totals.parsed,
        sum.totals.malformed,
        sum.totals.skipped,
        run.meta.skipped_files.len(),
        sum.requests.total,
        sum.requests.failed,
        sum.requests.retried,
        sum.requests.refused,
        sum.confidence.high,
        sum.confidence.medium,
        sum.confidence.low
    );
    let d = &run.meta.diagnostics;
    if !d.is_empty() {
        let _ = write!(h, "<details><summary class=\"warn\">{} diagnostic(s)</summary><ul>", d.len());
        for x in d.iter().take(50) {
            let _ = write!(h, "<li>{}</li>", esc(&x.to_string()));
        }
        if d.len() > 50 {
            let _ = write!(h, "<li>... {} more in summary.json</li>", d.len() - 50);
        }
        h.push_str("</ul></details>");
    }

    // Incidents, each with its own fine-grained timeline.
    let req_rows: Vec<(Ts, String, String, Option<String>)> = (|| {
        let q = &r.events.req;
        let (t, c, o, i) =
            (i64s(q, "ts_ms").ok()?, strs(q, "cause").ok()?, strs(q, "outcome").ok()?, strs(q, "incident").ok()?);
        Some(
            (0..q.height())
                .filter(|&k| o[k].as_deref() == Some("failed"))
                .map(|k| (t[k].unwrap_or(0), c[k].clone().unwrap_or_default(), String::new(), i[k].clone()))
                .collect(),
        )
    })()
    .unwrap_or_default();
    let _ = write!(h, "<h2>Incidents ({})</h2>", r.incidents.len());
    if r.incidents.is_empty() {
        h.push_str("<p>No burst of client-facing upstream failures.</p>");
    }
    for x in r.incidents.iter().take(20) {
        let _ = write!(
            h,
            "<div class=\"incident\"><h3>{} &middot; {} .. {} ({:.0} s)</h3><p>{} failed of {} requests, peak {}/min, {} retried attempts.{}{}</p>",
            esc(&x.id),
            esc(&format_rfc3339(x.start, z)),
            esc(&format_rfc3339(x.end, z)),
            (x.end - x.start) as f64 / 1000.0,
            x.failed,
            x.requests,
            x.peak_per_min,
            x.retried,
            x.earliest_evidence.as_ref().map(|e| format!(" Earliest evidence: <code>{}</code>.", esc(e))).unwrap_or_default(),
            x.contributing().map(|c| format!(" Contributing: <b>{}</b>.", esc(&c))).unwrap_or_default()
        );
        let span = (x.end - x.start).max(1);
        let step =
            [1_000, 10_000, 60_000, 300_000, 3_600_000].into_iter().find(|s| span / s <= 120).unwrap_or(3_600_000);
        let b0 = (x.start - step).div_euclid(step) * step;
        let buckets: Vec<Ts> = (0..=((x.end + step - b0) / step)).map(|k| b0 + k * step).collect();
        let rows: Vec<(Ts, String, f64)> = req_rows
            .iter()
            .filter(|q| q.3.as_deref() == Some(x.id.as_str()))
            .map(|q| (q.0.div_euclid(step) * step, q.1.clone(), 1.0))
            .collect();
        h.push_str(&cause_chart(&format!("{}: failed requests by cause", x.id), &buckets, &rows, z));
        h.push_str("<table><tr><th>cause</th><th>class</th><th>failed</th></tr>");
        for (c, k, n) in &x.causes {
            let _ =
                write!(h, "<tr><td>{}</td><td>{}</td><td class=\"n\">{n}</td></tr>", esc(k.as_str()), esc(c.as_str()));
        }
        h.push_str("</table>");
        if !x.lifecycle.is_empty() {
            h.push_str("<p>Lifecycle around it:</p><ul>");
            for l in x.lifecycle.iter().take(20) {
                let _ = write!(h, "<li><code>{}</code></li>", esc(l));
            }
            h.push_str("</ul>");
        }
        h.push_str("</div>");
    }
    if r.incidents.len() > 20 {
        let _ = write!(h, "<p>... {} more incidents in incidents.csv.</p>", r.incidents.len() - 20);
    }

    // Charts over the whole run.
    h.push_str("<h2>Timeline</h2>");
    if let Some(tc) = table_of(r, "timeline_causes.csv") {
        let tl = table_of(r, "timeline.csv");
        let starts: Vec<Ts> = tl.map(|t| bucket_ms(t, z)).unwrap_or_default();
        let b = strs(tc, "bucket_start").unwrap_or_default();
        let c = strs(tc, "cause").unwrap_or_default();
        let n = i64s(tc, "failed").unwrap_or_default();
        let rows: Vec<(Ts, String, f64)> = (0..tc.height())
            .map(|i| (parse_ms(b[i].as_deref()), c[i].clone().unwrap_or_default(), n[i].unwrap_or(0) as f64))
            .collect();
        h.push_str(&cause_chart(
            &format!("Failed requests by cause (bucket {} s)", r.bucket_ms / 1000),
            &starts,
            &rows,
            z,
        ));
    }
    if let Some(tl) = table_of(r, "timeline.csv") {
        let starts = bucket_ms(tl, z);
        let labels: Vec<String> = starts.iter().map(|s| short_time(*s, z, r.bucket_ms)).collect();
        let get = |c: &str| f64s(tl, c).unwrap_or_default().into_iter().map(|v| v.unwrap_or(0.0)).collect::<Vec<f64>>();
        let names = ["s2xx", "s3xx", "s4xx", "s499", "s5xx"];
        let cols = ["#2ca02c", "#1f77b4", "#bcbd22", "#ff7f0e", "#d62728"];
        let series: Vec<Vec<f64>> = names.iter().map(|n| get(n)).collect();
        let rate: Vec<Option<f64>> = f64s(tl, "error_rate").unwrap_or_default();
        let (labels2, series2) = rebucket(labels.clone(), series);
        let k = labels.len().div_ceil(MAX_BARS).max(1);
        let rate2: Vec<Option<f64>> = rate
            .chunks(k)
            .map(|c| {
                let v: Vec<f64> = c.iter().flatten().copied().collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            })
            .collect();
        let ser: Vec<Series> = names
            .iter()
            .zip(cols)
            .zip(series2)
            .map(|((n, c), v)| Series { name: n.to_string(), color: c.into(), values: v })
            .collect();
        h.push_str(&svg::stacked_bars(
            "Requests by status and error rate (5xx + 499)",
            &labels2,
            &ser,
            "requests",
            Some(("error rate", &rate2)),
        ));
    }
    if let Some(lat) = table_of(r, "latency.csv") {
        let (dim, key, metric) = (
            strs(lat, "dimension").unwrap_or_default(),
            strs(lat, "key").unwrap_or_default(),
            strs(lat, "metric").unwrap_or_default(),
        );
        let mut per: BTreeMap<String, [Option<f64>; 3]> = BTreeMap::new();
        let qs = [
            f64s(lat, "p50_ms").unwrap_or_default(),
            f64s(lat, "p90_ms").unwrap_or_default(),
            f64s(lat, "p99_ms").unwrap_or_default(),
        ];
        for i in 0..lat.height() {
            if dim[i].as_deref() == Some("bucket") && metric[i].as_deref() == Some("request_time") {
                per.insert(key[i].clone().unwrap_or_default(), [qs[0][i], qs[1][i], qs[2][i]]);
            }
        }
        if !per.is_empty() {
            let cut = if r.bucket_ms < 60_000 { 11..19 } else { 5..16 };
            let mut labels: Vec<String> =
                per.keys().map(|k| k.get(cut.clone()).unwrap_or(k).replace('T', " ")).collect();
            let mut vals: Vec<Vec<Option<f64>>> = (0..3).map(|q| per.values().map(|v| v[q]).collect()).collect();
            if labels.len() > MAX_BARS {
                let k = labels.len().div_ceil(MAX_BARS);
                labels = labels.into_iter().step_by(k).collect();
                vals = vals
                    .into_iter()
                    .map(|v| v.chunks(k).map(|c| c.iter().flatten().copied().reduce(f64::max)).collect())
                    .collect();
            }
            let series: Vec<(String, String, Vec<Option<f64>>)> = ["p50", "p90", "p99"]
                .iter()
                .zip(vals)
                .enumerate()
                .map(|(i, (n, v))| (n.to_string(), color(i + 1).to_string(), v))
                .collect();
            h.push_str(&svg::lines("$request_time percentiles (ms)", &labels, &series, "ms"));
        }
    }

    // Frequency tables.
    let top = run.meta.top.max(1);
    h.push_str("<h2>Where the failures are</h2>");
    for (name, title, key, cols) in [
        (
            "by_cause.csv",
            "By cause",
            "cause",
            &["cause_class", "failed", "retried", "refused", "share", "high", "medium", "low"][..],
        ),
        (
            "by_upstream.csv",
            "By upstream",
            "upstream",
            &["failed", "retried", "top_cause", "attempts", "failed_attempts"][..],
        ),
        ("by_host.csv", "By host", "host", &["failed", "retried", "top_cause", "requests", "error_rate"][..]),
        ("by_uri.csv", "By URI (normalised)", "uri_pattern", &["failed", "retried", "top_cause", "example"][..]),
        ("by_client.csv", "By client", "client", &["failed", "retried", "refused", "top_cause"][..]),
        (
            "by_pool.csv",
            "FPM by pool and script",
            "pool",
            &["script", "slow", "timed_out", "exited_on_signal", "exited_with_code", "max_children_reached", "events"]
                [..],
        ),
    ] {
        if let Some(df) = table_of(r, name) {
            let _ = write!(h, "<h3>{title}</h3>");
            h.push_str(&freq_table(df, key, cols, top));
        }
    }

    // Causes: meaning, fix, evidence samples.
    h.push_str("<h2>Causes, evidence and fixes</h2>");
    let err_rows = sample_rows(&r.events.err);
    for c in &sum.request_causes {
        let (meaning, fix) = texts.get(c.cause.as_str()).copied().unwrap_or(("", ""));
        let _ = write!(
            h,
            "<h3>{} <span class=\"muted\">[{}] &middot; {}</span></h3><p>{}</p><p><b>Fix:</b> {}</p>",
            esc(&c.cause),
            esc(&c.cause_class),
            if c.refused > 0 {
                format!("{} refused by nginx itself", c.refused)
            } else {
                format!("{} failed, {} retried", c.failed, c.retried)
            },
            esc(meaning),
            esc(fix)
        );
        if let Some(rows) = err_rows.get(c.cause.as_str()) {
            h.push_str(&samples(&r.events.err, rows));
        }
    }
    h.push_str("<p class=\"muted\">Generated by upcause; the tables behind this page are the CSV and Parquet files next to it.</p></body></html>\n");
    h
}

fn parse_ms(s: Option<&str>) -> Ts {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| t.timestamp_millis()).unwrap_or(0)
}

fn bucket_ms(tl: &DataFrame, _z: &crate::model::Zone) -> Vec<Ts> {
    strs(tl, "bucket_start").unwrap_or_default().iter().map(|s| parse_ms(s.as_deref())).collect()
}

/// Per cause: the rows of its first `SAMPLES` error lines, and how many lines it has. One
/// pass over the cause column, borrowing its strings (building owned columns once per cause
/// cost 0.1 s of a 2 GiB run).
fn sample_rows(err: &DataFrame) -> BTreeMap<String, (Vec<usize>, usize)> {
    let mut out: BTreeMap<String, (Vec<usize>, usize)> = BTreeMap::new();
    let Ok(c) = err.column("cause").and_then(|c| c.str().cloned()) else { return out };
    for (i, v) in c.iter().enumerate() {
        let Some(v) = v else { continue };
        let e = match out.get_mut(v) {
            Some(e) => e,
            None => out.entry(v.to_string()).or_default(),
        };
        e.1 += 1;
        if e.0.len() < SAMPLES {
            e.0.push(i);
        }
    }
    out
}

/// The nginx lines of one cause, as written (reassembled), with file:line.
fn samples(err: &DataFrame, rows: &(Vec<usize>, usize)) -> String {
    let get = |n: &str, i: usize| -> Option<String> { err.column(n).ok()?.str().ok()?.get(i).map(str::to_string) };
    let line = |i: usize| err.column("line").ok().and_then(|c| c.get(i).ok()).and_then(|v| v.extract::<i64>());
    let mut s = String::new();
    for &i in &rows.0 {
        let mut text = format!("[{}] {}", get("level", i).unwrap_or_default(), get("message", i).unwrap_or_default());
        for (k, col, q) in [
            ("client", "client", false),
            ("server", "server", false),
            ("request", "request", true),
            ("upstream", "upstream", true),
            ("host", "vhost", true),
        ] {
            if let Some(v) = get(col, i) {
                let _ = if q { write!(text, ", {k}: \"{v}\"") } else { write!(text, ", {k}: {v}") };
            }
        }
        let _ = write!(
            s,
            "<pre>{}:{} {}\n{}</pre>",
            esc(&get("file", i).unwrap_or_default()),
            line(i).unwrap_or(0),
            esc(&get("time", i).unwrap_or_default()),
            esc(&text)
        );
    }
    if rows.1 > SAMPLES {
        let _ = write!(s, "<p class=\"muted\">{} more lines in errors.csv.</p>", rows.1 - SAMPLES);
    }
    s
}

pub fn write(run: &Run, r: &Report, dir: &Path) -> Result<(), RenderError> {
    write_atomic(&dir.join("report.html"), render(run, r).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cause;

    #[test]
    fn every_cause_has_a_meaning_and_a_fix() {
        let t = cause_texts();
        for c in Cause::ALL {
            let (m, f) = t.get(c.as_str()).unwrap_or_else(|| panic!("no text for {c}"));
            assert!(!m.is_empty() && !f.is_empty(), "{c}");
        }
    }
}
