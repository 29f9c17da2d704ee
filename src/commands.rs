//! The `compare`, `history` and `merge` commands: stored runs in, reports out.
//!
//! Input: validated CLI arguments. Output: a directory of CSV files and an HTML page (or a
//! merged run directory), and a terminal summary. Invariants: no raw log is read except in
//! compare's window mode (which analyses the inputs once and cuts the result); every
//! refusal (missing, empty or other-schema run, bad window) is a clear `Error`.

use crate::aggregate::compare::{self, Side};
use crate::aggregate::report;
use crate::aggregate::run::Run;
use crate::aggregate::store;
use crate::cli::{AnalyzeArgs, CompareArgs, HistoryArgs, MergeArgs};
use crate::config::{default_name, Config};
use crate::model::Ts;
use crate::render::{self, RenderError};
use crate::Error;
use std::path::{Path, PathBuf};

fn table_err(e: polars::error::PolarsError) -> Error {
    Error::Render(RenderError::Table { table: "report".into(), source: e })
}

fn side<'a>(label: String, run: &'a Run) -> Result<Side<'a>, Error> {
    Ok(Side { label, run, report: report::build(run).map_err(table_err)? })
}

fn parse_window(w: &str, zone: &crate::model::Zone, what: &str) -> Result<(Ts, Ts), Error> {
    let bad = || Error::Time(format!("{what} {w:?}: expected START..END"));
    let (a, b) = w.split_once("..").ok_or_else(bad)?;
    let a = crate::model::time::parse_user_time(a, zone).ok_or_else(bad)?;
    let b = crate::model::time::parse_user_time(b, zone).ok_or_else(bad)?;
    if b <= a {
        return Err(Error::Time(format!("{what} {w:?}: the end must come after the start")));
    }
    Ok((a, b))
}

fn write_tables(dir: &Path, tables: &[(&str, polars::prelude::DataFrame)]) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(render::io_err(dir))?;
    for (name, df) in tables {
        let mut df = df.clone();
        render::csv::write(&mut df, &dir.join(name))?;
    }
    Ok(())
}

pub fn run_compare(a: CompareArgs) -> Result<i32, Error> {
    let (runs, labels): (Vec<Run>, Vec<String>) = match (&a.window_a, &a.window_b) {
        (Some(wa), Some(wb)) => {
            let args = AnalyzeArgs {
                paths: a.paths.clone(),
                tz: a.tz.clone(),
                log_format: a.log_format.clone(),
                nginx_conf: a.nginx_conf.clone(),
                jobs: a.jobs,
                quiet: true,
                ..Default::default()
            };
            let mut cfg = Config::from_args(&args)?;
            let mut an = crate::analyze(&mut cfg, !a.quiet)?;
            let opts = crate::render_options(&cfg);
            let full = Run::from_analysis(&mut an, &opts.run).map_err(table_err)?;
            let z = full.meta.zone();
            let (a0, a1) = parse_window(wa, &z, "--window-a")?;
            let (b0, b1) = parse_window(wb, &z, "--window-b")?;
            let ra = full.window(a0, a1).map_err(table_err)?;
            let rb = full.window(b0, b1).map_err(table_err)?;
            (vec![ra, rb], vec![format!("A {wa}"), format!("B {wb}")])
        }
        _ => {
            if a.paths.len() != 2 {
                return Err(Error::Usage(format!(
                    "compare takes two run directories (A B), got {}; or give log inputs with --window-a and --window-b",
                    a.paths.len()
                )));
            }
            let r0 = store::load_for_compare(Path::new(&a.paths[0]))?;
            let r1 = store::load_for_compare(Path::new(&a.paths[1]))?;
            (vec![r0, r1], a.paths.iter().map(|p| default_name(p)).collect())
        }
    };
    let sa = side(labels[0].clone(), &runs[0])?;
    let sb = side(labels[1].clone(), &runs[1])?;
    let tables = compare::compare_tables(&sa, &sb).map_err(table_err)?;
    let out = a.out.clone().unwrap_or_else(|| {
        let n = |s: &str| default_name(&s.replace(' ', "_").replace(['.', ':'], "-"));
        PathBuf::from("reports").join(format!("compare-{}-{}", n(&labels[0]), n(&labels[1])))
    });
    write_tables(&out, &tables)?;
    render::write_atomic(&out.join("compare.html"), render::compare::compare_html(&sa, &sb, &tables).as_bytes())?;
    if !a.quiet {
        render::terminal::print(&render::compare::compare_text(&sa, &sb, &tables, &out))?;
    }
    Ok(0)
}

pub fn run_history(a: HistoryArgs) -> Result<i32, Error> {
    // Each run's summary.json is all history needs.
    let runs: Vec<store::RunSummary> =
        a.runs.iter().map(|p| store::load_summary(p, default_name(&p.to_string_lossy()))).collect::<Result<_, _>>()?;
    let hist = compare::history(&runs).map_err(table_err)?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("reports/history"));
    write_tables(&out, &[("history.csv", hist.clone())])?;
    render::write_atomic(&out.join("history.html"), render::compare::history_html(&runs, &hist).as_bytes())?;
    if !a.quiet {
        render::terminal::print(&render::compare::history_text(&hist, &out))?;
    }
    Ok(0)
}

pub fn run_merge(a: MergeArgs) -> Result<i32, Error> {
    let name = default_name(&a.out.to_string_lossy());
    let run = store::load_merged(&a.runs, &name)?;
    let rep = report::build(&run).map_err(table_err)?;
    render::write_run(&run, &rep, &a.out)?;
    if !a.quiet {
        render::terminal::print(&render::terminal::render(&run, &rep, &a.out))?;
    }
    let bad = run.meta.diagnostics.iter().any(|d| d.severity == crate::model::Severity::Error)
        || run.meta.inputs.iter().any(|i| i.malformed > 0);
    Ok(if bad { 2 } else { 0 })
}
