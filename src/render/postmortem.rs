//! `postmortem.md`: a draft of the document a team writes after an outage, to paste into
//! GitHub, GitLab or Confluence.
//!
//! Input: a `Run` and its `Report`. Output: Markdown: for each top incident (by impact) one
//! summary sentence, its impact, a timeline of the key moments (earliest evidence, FPM and
//! nginx lifecycle events, first failure, peak minute, last failure, recovery), the root
//! causes with the evidence lines quoted (file:line), contributing factors, what stayed
//! unexplained and why, the fix each cause suggests, and the time from the first evidence to
//! the first failure; then the background. Invariants: built only from the run's data (the
//! words around the figures are fixed; the meanings and fixes come from `causes.tsv`), no
//! clock read (deterministic: the same input gives the same bytes); every string from a log
//! is escaped for Markdown (`md`) or fenced so nothing in it can end the fence (`fence`).

use super::{write_atomic, RenderError};
use crate::aggregate::quiet::{QUOTES, QUOTE_AFTER_MS, QUOTE_BEFORE_MS};
use crate::aggregate::report::{i64s, strs, Report};
use crate::aggregate::run::Run;
use crate::correlate::Incident;
use crate::model::time::format_rfc3339;
use crate::model::{Ts, Zone};
use crate::scan::traffic::col;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Incidents written out in full (by rank).
const TOP: usize = 5;
/// How far after an incident to look for the first healthy second.
const RECOVERY_WINDOW_S: i64 = 600;

/// Escape Markdown's inline syntax (and the table separator) in text from a log. The text
/// never starts a line (it follows a bullet's words or sits in a table cell), so the
/// line-start syntax (`#`, `-`, `1.`) cannot apply; links need `[`, escaped.
pub fn md(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '<' | '>' | '~' | '&' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A fenced code block whose fence is longer than any run of backticks in `body`.
pub fn fence(body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let f = "`".repeat(longest.max(2) + 1);
    format!("{f}text\n{}\n{f}\n", body.trim_end_matches('\n'))
}

fn texts() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    include_str!("causes.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("cause\t"))
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, (f.next()?, f.next()?)))
        })
        .collect()
}

/// A quoted nginx error line: time, file, line (its order), place (`SharedPaths::place`),
/// message.
type Quote = (Ts, String, i64, String, String);

/// What the post-mortem reads of the events: per incident id, its failing requests
/// (time, cause, detail), and the nginx error lines by cause.
struct Events {
    requests: BTreeMap<String, Vec<(Ts, String, String)>>,
    lines: BTreeMap<String, Vec<Quote>>,
}

fn events(r: &Report) -> Events {
    let mut requests: BTreeMap<String, Vec<(Ts, String, String)>> = BTreeMap::new();
    let q = &r.events.req;
    if let (Ok(t), Ok(c), Ok(o), Ok(i), Ok(d)) =
        (i64s(q, "ts_ms"), strs(q, "cause"), strs(q, "outcome"), strs(q, "incident"), strs(q, "detail"))
    {
        for k in 0..q.height() {
            if let (Some(id), Some("failed")) = (&i[k], o[k].as_deref()) {
                requests.entry(id.clone()).or_default().push((
                    t[k].unwrap_or(0),
                    c[k].clone().unwrap_or_default(),
                    d[k].clone().unwrap_or_default(),
                ));
            }
        }
    }
    // Only the lines an incident can quote (its causes, around its span): on a noisy error
    // log, copying every row's message here cost 0.2 s and 70 MB for a few dozen quotes.
    let mut windows: BTreeMap<&str, Vec<(Ts, Ts)>> = BTreeMap::new();
    for x in &r.incidents {
        for (_, k, _) in &x.causes {
            windows.entry(k.as_str()).or_default().push((x.start - QUOTE_BEFORE_MS, x.end + QUOTE_AFTER_MS));
        }
    }
    let mut lines: BTreeMap<String, Vec<Quote>> = BTreeMap::new();
    // The held error rows, then the quiet rows the digest picked for these windows.
    for e in [&r.events.err, &r.digest.quotes] {
        let col = |c: &str| e.column(c).ok().and_then(|c| c.str().ok().cloned());
        if let (Ok(t), Some(c), Some(f), Ok(l), Some(m), Some(lv), Some(mc)) =
            (i64s(e, "ts_ms"), col("cause"), col("file"), i64s(e, "line"), col("message"), col("level"), col("machine"))
        {
            for k in 0..e.height() {
                let (Some(cause), ts) = (c.get(k), t[k].unwrap_or(0)) else { continue };
                if !windows.get(cause).is_some_and(|w| w.iter().any(|&(a, b)| a <= ts && ts <= b)) {
                    continue;
                }
                let (file, line) = (f.get(k).unwrap_or_default(), l[k].unwrap_or(0));
                lines.entry(cause.to_string()).or_default().push((
                    ts,
                    file.to_string(),
                    line,
                    r.shared.place(mc.get(k), file, line),
                    format!("[{}] {}", lv.get(k).unwrap_or(""), m.get(k).unwrap_or("")),
                ));
            }
        }
    }
    // In (time, file, line) order, as one table of every row gave them.
    for v in lines.values_mut() {
        v.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    }
    Events { requests, lines }
}

fn dur(ms: Ts) -> String {
    let s = ms.max(0) / 1000;
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

/// The first second after the incident with requests and no 502, 503 or 504.
fn recovery(run: &Run, x: &Incident) -> Option<Ts> {
    let s0 = x.end.div_euclid(1000) + 1;
    run.traffic
        .per_sec
        .range(s0, s0 + RECOVERY_WINDOW_S)
        .find(|(_, row)| row[col::TOTAL] > 0 && row[col::S502] + row[col::S503] + row[col::S504] == 0)
        .map(|(s, _)| s * 1000)
}

/// One incident's section; `machines`: its failures per machine (`Tables::machines_in`).
fn incident(
    out: &mut String,
    run: &Run,
    x: &Incident,
    ev: &Events,
    machines: &[(String, i64)],
    z: &Zone,
    texts: &BTreeMap<&str, (&str, &str)>,
) {
    let t = |ts: Ts| format_rfc3339(ts, z);
    let reqs = ev.requests.get(&x.id).map(Vec::as_slice).unwrap_or(&[]);
    let _ = writeln!(out, "## Incident {} (impact rank {}): {} to {}\n", x.id, x.rank, t(x.start), t(x.end));
    let lead: Vec<String> = x.causes.iter().take(2).map(|(_, k, n)| format!("`{k}` ({n} requests)")).collect();
    let _ = writeln!(
        out,
        "**Summary.** For {}, {} of {} requests failed ({:.1}%) for {} clients; the leading cause{} {}.\n",
        dur(x.end - x.start),
        x.failed,
        x.requests,
        100.0 * x.failed_share(),
        x.clients,
        if lead.len() > 1 { "s were" } else { " was" },
        lead.join(" and ")
    );
    out.push_str("### Impact\n\n| measure | value |\n|---|---|\n");
    let _ = writeln!(out, "| failed requests | {} of {} ({:.1}%) |", x.failed, x.requests, 100.0 * x.failed_share());
    let _ = writeln!(out, "| clients affected | {} |", x.clients);
    let _ = writeln!(out, "| duration | {} |", dur(x.end - x.start));
    let _ = writeln!(out, "| peak | {} failed per minute |", x.peak_per_min);
    let _ = writeln!(out, "| hidden failed attempts (a retry answered) | {} |", x.retried);
    // A fleet's run (`merge`): the machines the failures happened on.
    if run.meta.machines.len() > 1 {
        let named: Vec<String> = machines.iter().map(|(k, n)| format!("{} {n}", md(k))).collect();
        let _ =
            writeln!(out, "| machines ({} of {}) | {} |", machines.len(), run.meta.machines.len(), named.join(", "));
    }
    let _ = writeln!(out, "| failures the background predicts for the window | {:.3} |\n", x.expected);

    // Timeline of the key moments.
    let mut moments: Vec<(Ts, String)> = Vec::new();
    let first_ev = x.earliest_ms.zip(x.earliest_evidence.clone());
    if let Some((ts, e)) = &first_ev {
        moments.push((*ts, format!("earliest evidence: {}", md(e))));
    }
    for l in &x.lifecycle {
        // "TIME what (file:line)": the time is the text's first word.
        let (when, what) = l.split_once(' ').unwrap_or((l, ""));
        let ts = chrono::DateTime::parse_from_rfc3339(when).map(|d| d.timestamp_millis()).unwrap_or(x.start);
        moments.push((ts, format!("lifecycle: {}", md(what))));
    }
    if let (Some(f), Some(l)) = (reqs.iter().map(|r| r.0).min(), reqs.iter().map(|r| r.0).max()) {
        moments.push((
            f,
            format!(
                "first failed request ({})",
                md(&reqs.iter().find(|r| r.0 == f).map(|r| r.1.clone()).unwrap_or_default())
            ),
        ));
        let mut per_min: BTreeMap<Ts, u64> = BTreeMap::new();
        for r in reqs {
            *per_min.entry(r.0.div_euclid(60_000) * 60_000).or_insert(0) += 1;
        }
        if let Some((m, n)) = per_min.iter().max_by_key(|(m, n)| (**n, std::cmp::Reverse(**m))) {
            let at = (*m).max(f);
            moments.push((at, format!("peak minute (from {}): {n} failed requests", t(*m).get(11..16).unwrap_or(""))));
        }
        moments.push((l, "last failed request".into()));
    }
    match recovery(run, x) {
        Some(ts) => moments.push((ts, "recovered: the first second with requests and no 502, 503 or 504".into())),
        None => moments.push((x.end, "no healthy second within 10 minutes after it in the access logs".into())),
    }
    moments.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    out.push_str("### Timeline\n\n| time | what |\n|---|---|\n");
    for (ts, what) in &moments {
        let _ = writeln!(out, "| {} | {} |", t(*ts), what);
    }
    out.push('\n');

    // Root causes with their evidence.
    out.push_str("### Root cause\n\n");
    for (c, k, n) in &x.causes {
        let (meaning, _) = texts.get(k.as_str()).copied().unwrap_or(("", ""));
        let _ = writeln!(out, "- **`{k}`** [{c}], {n} requests: {}", md(meaning));
    }
    out.push('\n');
    for (_, k, _) in x.causes.iter().filter(|c| c.1.as_str() != "unexplained") {
        let quotes: Vec<&Quote> = ev
            .lines
            .get(k.as_str())
            .map(|v| {
                v.iter()
                    .filter(|l| l.0 >= x.start - QUOTE_BEFORE_MS && l.0 <= x.end + QUOTE_AFTER_MS)
                    .take(QUOTES)
                    .collect()
            })
            .unwrap_or_default();
        if quotes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "Evidence for `{k}`:\n");
        let body: String = quotes.iter().map(|q| format!("{} {}\n{}\n", q.3, t(q.0), q.4)).collect();
        out.push_str(&fence(&body));
        out.push('\n');
    }
    out.push_str("### Contributing factors\n\n");
    match x.contributing() {
        Some(c) => {
            let _ = writeln!(out, "- {}\n", md(&c));
        }
        None => out.push_str("- none found in the logs (no traffic spike at the onset)\n\n"),
    }

    // What stayed unexplained.
    let mut why: BTreeMap<&str, u64> = BTreeMap::new();
    for r in reqs.iter().filter(|r| r.1 == "unexplained") {
        *why.entry(r.2.as_str()).or_insert(0) += 1;
    }
    out.push_str("### Unexplained\n\n");
    if why.is_empty() {
        out.push_str("- every failed request of the incident has a cause.\n\n");
    } else {
        let mut w: Vec<(&str, u64)> = why.into_iter().collect();
        w.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (reason, n) in w.iter().take(5) {
            let _ = writeln!(out, "- {n} requests: {}", md(reason));
        }
        out.push('\n');
    }

    // Fixes.
    out.push_str("### Fixes the causes suggest\n\n");
    for (_, k, _) in &x.causes {
        let (_, fix) = texts.get(k.as_str()).copied().unwrap_or(("", ""));
        if !fix.is_empty() {
            let _ = writeln!(out, "- [ ] `{k}`: {}", md(fix));
        }
    }
    out.push('\n');
    out.push_str("### Time to impact\n\n");
    match (&first_ev, reqs.iter().map(|r| r.0).min()) {
        (Some((e, _)), Some(f)) => {
            let _ = writeln!(
                out,
                "The first evidence came {} {} the first failed request.\n",
                dur((f - e).abs()),
                if *e <= f { "before" } else { "after" }
            );
        }
        _ => out.push_str("No evidence line before the first failure.\n\n"),
    }
}

pub fn render(run: &Run, r: &Report) -> String {
    let z = &r.zone;
    let texts = texts();
    let ev = events(r);
    let mut out = String::new();
    let _ = writeln!(out, "# Post-mortem draft: {}\n", md(&run.meta.name));
    let range =
        r.range.map(|(a, b)| format!("{} to {}", format_rfc3339(a, z), format_rfc3339(b, z))).unwrap_or_default();
    let _ = writeln!(
        out,
        "_Drafted by upcause from {} log files ({}; zone {}). Every figure and quoted line comes from those logs; the meanings and fixes are upcause's cause descriptions. Edit freely._\n",
        run.meta.inputs.len(),
        range,
        md(&run.meta.zone.zone)
    );
    let mut by_rank: Vec<&Incident> = r.incidents.iter().collect();
    by_rank.sort_by_key(|x| x.rank);
    let bg = &r.background;
    out.push_str("## Overview\n\n");
    if by_rank.is_empty() {
        let _ = writeln!(
            out,
            "No incident: no burst of failures stands out from the background of {} failed requests ({:.3} per 1,000).\n",
            bg.failed,
            bg.per_1000()
        );
    } else {
        let _ = writeln!(
            out,
            "{} incident(s) stand out from the background of {} failed requests ({:.3} per 1,000 requests); by impact:\n",
            by_rank.len(),
            bg.failed,
            bg.per_1000()
        );
        out.push_str("| rank | incident | start | duration | failed | share | clients | leading cause |\n|---|---|---|---|---|---|---|---|\n");
        for x in by_rank.iter().take(20) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1}% | {} | `{}` |",
                x.rank,
                x.id,
                format_rfc3339(x.start, z),
                dur(x.end - x.start),
                x.failed,
                100.0 * x.failed_share(),
                x.clients,
                x.causes.first().map_or("", |c| c.1.as_str())
            );
        }
        out.push('\n');
        if by_rank.len() > 20 {
            let _ = writeln!(out, "{} more in `incidents.csv`.\n", by_rank.len() - 20);
        }
    }
    for x in by_rank.iter().take(TOP) {
        let machines = r.tables.machines_in(&x.id).unwrap_or_default();
        incident(&mut out, run, x, &ev, &machines, z, &texts);
    }
    out.push_str("## Background\n\n");
    let _ = writeln!(
        out,
        "Outside the incidents {} requests failed ({:.3} per 1,000 requests). Incidents are the bursts this rate does not explain (detection measured them against {:.4} per 1,000).\n",
        bg.failed,
        bg.per_1000(),
        bg.rate * 1000.0
    );
    if !bg.causes.is_empty() {
        out.push_str("| cause | class | failed |\n|---|---|---|\n");
        for (c, k, n) in bg.causes.iter().take(10) {
            let _ = writeln!(out, "| `{k}` | {c} | {n} |");
        }
        out.push('\n');
    }
    out
}

pub fn write(run: &Run, r: &Report, dir: &Path) -> Result<(), RenderError> {
    write_atomic(&dir.join("postmortem.md"), render(run, r).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_cannot_break_the_markdown() {
        assert_eq!(md("a|b *c* [x](y) <b> php-fpm.log"), "a\\|b \\*c\\* \\[x\\](y) \\<b\\> php-fpm.log");
        assert_eq!(md("line\nnext"), "line next");
        let f = fence("GET /x?q=```rm``` HTTP/1.1");
        assert!(f.starts_with("````text\n") && f.ends_with("\n````\n"), "{f}");
    }
}
