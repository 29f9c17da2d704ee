//! Building blocks of `report.html`: frequency tables, cause charts (one colour per cause),
//! evidence samples, and the cause texts (`causes.tsv`).
//!
//! Input: the report's tables. Output: HTML fragments. Invariants: every string from a log is
//! escaped (`svg::esc`); sizes are capped (`MAX_BARS`, `aggregate::quiet::SAMPLES`, top N rows).

use crate::aggregate::report::{f64s, strs, SharedPaths};
use crate::model::time::format_rfc3339;
use crate::model::Ts;
use crate::render::svg::{self, cause_color, esc, Series};
use polars::prelude::DataFrame;
use std::collections::BTreeMap;
use std::fmt::Write;

const CAUSES: &str = include_str!("../causes.tsv");
pub const MAX_BARS: usize = 360;

pub(super) fn cause_texts() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    CAUSES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("cause\t"))
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, (f.next()?, f.next()?)))
        })
        .collect()
}

/// An HTML table of `cols` of the `scope = all` rows of a frequency table, top `n` rows by
/// order plus an "others" row summing the numeric columns.
pub(super) fn freq_table(df: &DataFrame, key: &str, cols: &[&str], n: usize) -> String {
    let Ok(scope) = strs(df, "scope") else { return String::new() };
    let idx: Vec<usize> = (0..df.height()).filter(|&i| scope[i].as_deref() == Some("all")).collect();
    let mut s = String::from("<table><tr>");
    let mut heads = vec![key];
    heads.extend_from_slice(cols);
    for h in &heads {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>");
    // Each column read once (a column read per cell copied the whole column every time:
    // 163 M instructions for the page of the plain bench file, whose `by_client` has
    // thousands of rows).
    enum Col {
        Text(Vec<Option<String>>),
        Num(Vec<Option<f64>>),
        Missing,
    }
    let columns: Vec<(&str, Col)> = heads
        .iter()
        .map(|&c| {
            let col = match strs(df, c) {
                Ok(v) => Col::Text(v),
                Err(_) => f64s(df, c).map_or(Col::Missing, Col::Num),
            };
            (c, col)
        })
        .collect();
    let cell = |c: &str, col: &Col, i: usize| -> (String, Option<f64>) {
        match col {
            Col::Text(v) => (v[i].clone().unwrap_or_default(), None),
            Col::Num(v) => match v[i] {
                Some(x) if c.contains("rate") || c == "share" => (format!("{:.1}%", x * 100.0), Some(x)),
                Some(x) if x.fract() == 0.0 => (format!("{x:.0}"), Some(x)),
                Some(x) => (format!("{x:.2}"), Some(x)),
                None => (String::new(), None),
            },
            Col::Missing => (String::new(), None),
        }
    };
    for &i in idx.iter().take(n) {
        s.push_str("<tr>");
        for (h, col) in &columns {
            let (text, num) = cell(h, col, i);
            let _ = write!(s, "<td{}>{}</td>", if num.is_some() { " class=\"n\"" } else { "" }, esc(&text));
        }
        s.push_str("</tr>");
    }
    if idx.len() > n {
        let rest = &idx[n..];
        let _ = write!(s, "<tr><td class=\"muted\">others ({} rows)</td>", rest.len());
        for (h, col) in &columns[1..] {
            let sum: Option<f64> = match col {
                Col::Num(v) if matches!(*h, "failed" | "retried" | "requests" | "attempts" | "failed_attempts") => {
                    Some(rest.iter().map(|&i| v[i].unwrap_or(0.0)).sum())
                }
                _ => None,
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
pub(super) fn rebucket(labels: Vec<String>, series: Vec<Vec<f64>>) -> (Vec<String>, Vec<Vec<f64>>) {
    let n = labels.len();
    if n <= MAX_BARS {
        return (labels, series);
    }
    let k = n.div_ceil(MAX_BARS);
    let labels = labels.into_iter().step_by(k).collect();
    let series = series.into_iter().map(|v| v.chunks(k).map(|c| c.iter().sum()).collect()).collect();
    (labels, series)
}

pub(super) fn cause_chart(title: &str, buckets: &[Ts], rows: &[(Ts, String, f64)], z: &crate::model::Zone) -> String {
    cause_chart_marked(title, buckets, rows, z, &[])
}

/// `cause_chart` with time spans marked behind the bars (`(start, end, label)`).
pub(super) fn cause_chart_marked(
    title: &str,
    buckets: &[Ts],
    rows: &[(Ts, String, f64)],
    z: &crate::model::Zone,
    spans: &[(Ts, Ts, String)],
) -> String {
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
        .map(|(o, v)| Series { name: o.0.clone(), color: cause_color(&o.0), values: v })
        .collect();
    // A span covers the (merged) bars its bucket range falls in.
    let k = buckets.len().div_ceil(MAX_BARS).max(1);
    let bar_of = |t: Ts| buckets.partition_point(|b| *b <= t).saturating_sub(1) / k;
    let marks: Vec<(usize, usize, String)> = spans
        .iter()
        .filter(|(a, z, _)| buckets.first().is_some_and(|f| *z >= *f) && buckets.last().is_some_and(|l| *a <= l + step))
        .map(|(a, z, l)| (bar_of(*a), bar_of(*z), l.clone()))
        .collect();
    svg::stacked_bars_marked(title, &labels, &series, "failed requests", None, &marks)
}

/// Axis label: `HH:MM:SS` for sub-minute buckets, else `MM-DD HH:MM`.
pub(super) fn short_time(ts: Ts, z: &crate::model::Zone, step: i64) -> String {
    let t = format_rfc3339(ts, z);
    let r = if step < 60_000 { t.get(11..19) } else { t.get(5..16) };
    r.map(|x| x.replace('T', " ")).unwrap_or(t)
}

pub(super) fn parse_ms(s: Option<&str>) -> Ts {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| t.timestamp_millis()).unwrap_or(0)
}

pub(super) fn bucket_ms(tl: &DataFrame, _z: &crate::model::Zone) -> Vec<Ts> {
    strs(tl, "bucket_start").unwrap_or_default().iter().map(|s| parse_ms(s.as_deref())).collect()
}

/// The nginx lines of one cause, as written (reassembled), with their place (`file:line`, or
/// `machine:file:line` where several machines log to the path: `SharedPaths`).
pub(super) fn samples(err: &DataFrame, rows: &(Vec<usize>, usize), shared: &SharedPaths) -> String {
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
        let place =
            shared.place(get("machine", i).as_deref(), &get("file", i).unwrap_or_default(), line(i).unwrap_or(0));
        let _ = write!(s, "<pre>{} {}\n{}</pre>", esc(&place), esc(&get("time", i).unwrap_or_default()), esc(&text));
    }
    if rows.1 > rows.0.len() {
        let _ = write!(s, "<p class=\"muted\">{} more lines in errors.csv.</p>", rows.1 - rows.0.len());
    }
    s
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
