//! The terminal summary: incidents first, then top causes, time range, files, diagnostics.
//!
//! Input: an `Analysis`. Output: text on stdout (a closed pipe ends the output quietly).
//! Invariant: short (a screen or so); everything else is in the run directory.

use super::RenderOptions;
use crate::aggregate::{request_cause_counts, Fmt};
use crate::correlate::Outcome;
use crate::Analysis;
use std::io::Write;

pub fn render(a: &Analysis, o: &RenderOptions) -> String {
    let f = Fmt { a };
    let mut s = String::new();
    let range = a
        .range()
        .map(|(x, y)| format!("{} .. {}", f.time(x), f.time(y)))
        .unwrap_or_else(|| "no timestamped lines".into());
    s += &format!("upcause {}: {range} (zone {}, {})\n", o.name, a.zone.zone, a.zone.chosen_by);
    if a.corr.incidents.is_empty() {
        s += "No incident (no burst of client-facing upstream failures).\n";
    } else {
        s += &format!("{} incident(s):\n", a.corr.incidents.len());
        for x in a.corr.incidents.iter().take(10) {
            let top: Vec<String> = x.causes.iter().take(3).map(|(c, k, n)| format!("{k} [{c}] {n}")).collect();
            s += &format!(
                "  {} {} .. {} ({:.0} s): {} failed of {} requests, peak {}/min; {}{}\n",
                x.id,
                f.time(x.start),
                f.time(x.end),
                (x.end - x.start) as f64 / 1000.0,
                x.failed,
                x.requests,
                x.peak_per_min,
                top.join(", "),
                x.spike.map(|(on, b)| format!("; traffic spike {on:.1}/s vs {b:.1}/s")).unwrap_or_default()
            );
        }
        if a.corr.incidents.len() > 10 {
            s += &format!("  ... {} more in incidents.csv\n", a.corr.incidents.len() - 10);
        }
    }
    let (rc, conf) = request_cause_counts(a);
    let failed = a.corr.requests.iter().filter(|t| t.outcome == Outcome::Failed).count();
    let retried = a.corr.requests.len() - failed;
    s += &format!(
        "Failing requests: {failed} (confidence high {}, medium {}, low {}); hidden failed attempts (retried): {retried}\n",
        conf[0], conf[1], conf[2]
    );
    for (c, k, n, r) in rc.iter().take(8) {
        s += &format!("  {:<28} {:<5} {:>8} failed {:>8} retried\n", k.as_str(), c.as_str(), n, r);
    }
    let lines: u64 = a.scan.stats.iter().map(|x| x.lines).sum();
    let bad: u64 = a.scan.stats.iter().map(|x| x.malformed).sum();
    s += &format!(
        "Read {} files ({} lines, {} malformed), skipped {} files. Reports: {}\n",
        a.sources.len(),
        lines,
        bad,
        a.skipped.len(),
        o.out_dir.display()
    );
    if !a.diags.is_empty() {
        s += &format!("{} diagnostic(s):\n", a.diags.len());
        for d in a.diags.iter().take(10) {
            s += &format!("  {d}\n");
        }
        if a.diags.len() > 10 {
            s += "  ... more in summary.json\n";
        }
    }
    s
}

pub fn print_summary(a: &Analysis, o: &RenderOptions) {
    let text = render(a, o);
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is fine: stop writing.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
