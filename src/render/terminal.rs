//! The terminal summary: incidents first, then top causes, time range, files, diagnostics.
//!
//! Input: a `Run` and its `Report`. Output: text on stdout (a closed pipe ends the output
//! quietly). Invariant: short (a screen or so); everything else is in the run directory.

use crate::aggregate::report::Report;
use crate::aggregate::run::Run;
use crate::model::time::format_rfc3339;
use std::io::Write;
use std::path::Path;

pub fn render(run: &Run, r: &Report, dir: &Path) -> String {
    let z = &r.zone;
    let t = |ts| format_rfc3339(ts, z);
    let mut s = String::new();
    let range = r.range.map(|(x, y)| format!("{} .. {}", t(x), t(y))).unwrap_or_else(|| "no timestamped lines".into());
    s += &format!("upcause {}: {range} (zone {}, {})\n", run.meta.name, run.meta.zone.zone, run.meta.zone.chosen_by);
    if r.incidents.is_empty() {
        s += "No incident (no burst of client-facing upstream failures above the background).\n";
    } else {
        s += &format!("{} incident(s), largest impact first:\n", r.incidents.len());
        let mut by_rank: Vec<&crate::correlate::Incident> = r.incidents.iter().collect();
        by_rank.sort_by_key(|x| x.rank);
        for x in by_rank.iter().take(10) {
            let top: Vec<String> = x.causes.iter().take(3).map(|(c, k, n)| format!("{k} [{c}] {n}")).collect();
            // A fleet's run (`merge`): the machines the failures happened on.
            let on = match run.meta.machines.len() {
                0 | 1 => String::new(),
                _ => {
                    let m = r.tables.machines_in(&x.id).unwrap_or_default();
                    let named: Vec<String> = m.iter().take(4).map(|(k, n)| format!("{k} {n}")).collect();
                    let more = if m.len() > 4 { format!(", {} more", m.len() - 4) } else { String::new() };
                    format!("; on {} of {} machines: {}{more}", m.len(), run.meta.machines.len(), named.join(", "))
                }
            };
            s += &format!(
                "  #{} {} {} .. {} ({:.0} s): {} failed of {} requests ({:.1}%), {} clients, peak {}/min; {}{}{on}\n",
                x.rank,
                x.id,
                t(x.start),
                t(x.end),
                x.duration_s(),
                x.failed,
                x.requests,
                100.0 * x.failed_share(),
                x.clients,
                x.peak_per_min,
                top.join(", "),
                x.spike.map(|(on, b)| format!("; traffic spike {on:.1}/s vs {b:.1}/s")).unwrap_or_default()
            );
        }
        if r.incidents.len() > 10 {
            s += &format!("  ... {} more in incidents.csv\n", r.incidents.len() - 10);
        }
    }
    let bg = &r.background;
    let top: Vec<String> = bg.causes.iter().take(3).map(|(_, k, n)| format!("{k} {n}")).collect();
    s += &format!(
        "Background (outside incidents): {} failed, {:.3} per 1,000 requests{}\n",
        bg.failed,
        bg.per_1000(),
        if top.is_empty() { String::new() } else { format!("; {}", top.join(", ")) }
    );
    let sum = super::json::build(run, r);
    s += &format!(
        "Failing requests: {} (confidence high {}, medium {}, low {}); hidden failed attempts (retried): {}\n",
        sum.requests.failed, sum.confidence.high, sum.confidence.medium, sum.confidence.low, sum.requests.retried
    );
    for c in sum.request_causes.iter().filter(|c| c.failed + c.retried > 0).take(8) {
        s += &format!("  {:<28} {:<12} {:>8} failed {:>8} retried\n", c.cause, c.cause_class, c.failed, c.retried);
    }
    if sum.requests.refused > 0 {
        let by: Vec<String> =
            sum.request_causes.iter().filter(|c| c.refused > 0).map(|c| format!("{} {}", c.cause, c.refused)).collect();
        s += &format!(
            "Refused by nginx itself (limit_req/limit_conn; not upstream failures, in no incident): {} ({})\n",
            sum.requests.refused,
            by.join(", ")
        );
    }
    s += &format!(
        "Read {} files ({} lines, {} malformed), skipped {} files. Reports: {}\n",
        sum.totals.files,
        sum.totals.lines,
        sum.totals.malformed,
        run.meta.skipped_files.len(),
        dir.display()
    );
    let d = &run.meta.diagnostics;
    if !d.is_empty() {
        s += &format!("{} diagnostic(s):\n", d.len());
        for x in d.iter().take(10) {
            s += &format!("  {x}\n");
        }
        if d.len() > 10 {
            s += "  ... more in summary.json\n";
        }
    }
    s
}

/// Write the summary to stdout. A closed pipe (`| head`) is fine: writing stops there and
/// the run still succeeds; any other write error is returned.
pub fn print(text: &str) -> Result<(), super::RenderError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(super::io_err(Path::new("(stdout)"))),
    }
}
