//! Issue 16: error-log rows no verdict reads (bots probing for files, client TLS and timeout
//! lines, PHP notices) and FPM lines no rule reads (children started, exited with code 0) are
//! kept out of memory during the scan (`scan::quiet`, `scan::quiet_fpm`) and merged back into
//! `errors.csv`, `fpm.csv` and `events.parquet`; with no writable temporary directory they stay
//! in memory, and the reports are the same.

use crate::common::*;
use crate::determinism::outputs;
use crate::week::{default_week, fmt_arg};
use std::path::PathBuf;
use std::process::Command;
use upcause::aggregate::run::Run;
use upcause::cli::AnalyzeArgs;
use upcause::config::Config;

/// On the noisy week most error-log rows are quiet: they are not in the analysis's held rows,
/// every held row is one a verdict or table reads, and `errors.csv` has both.
#[test]
fn quiet_rows_are_not_held_and_every_row_is_written() {
    let w = default_week();
    let args = AnalyzeArgs {
        paths: vec![w.dir.display().to_string()],
        log_format: vec![fmt_arg()],
        quiet: true,
        jobs: Some(2),
        ..Default::default()
    };
    let mut cfg = Config::from_args(&args).unwrap();
    let a = upcause::analyze(&mut cfg, false).unwrap();
    let quiet = a.scan.quiet.as_ref().expect("quiet rows on a noisy error log");
    let held = a.scan.errors.len() as u64;
    assert!(quiet.rows > 2 * held, "{} quiet rows, {held} held", quiet.rows);
    assert!(a.scan.errors.iter().all(|e| !e.is_quiet()), "a quiet row is held");
    let rows = read_csv(&w.out.join("errors.csv"));
    assert_eq!(rows.len() as u64, held + quiet.rows, "errors.csv has every row");
    // The quiet rows read back are the rows errors.csv lists as not joinable, in order.
    let back = a.scan.error_rows();
    assert_eq!(back.len(), rows.len());
    let n_quiet = back.iter().filter(|e| e.is_quiet()).count() as u64;
    assert_eq!(n_quiet, quiet.rows);
    let files: Vec<&str> = a.sources.iter().map(|s| s.display.as_str()).collect();
    let read = back.iter().map(|e| (files[e.source as usize], e.line, e.message()));
    assert!(same_rows(read, &rows), "errors.csv rows differ from the rows read");

    // FPM lines alike: children started and exited with code 0 are quiet, fpm.csv has them.
    let held_fpm = a.scan.fpm.len() as u64;
    assert!(quiet.fpm_rows > held_fpm, "{} quiet FPM rows, {held_fpm} held", quiet.fpm_rows);
    assert!(a.scan.fpm.iter().all(|e| !e.is_quiet()), "a quiet FPM row is held");
    let fpm = read_csv(&w.out.join("fpm.csv"));
    assert_eq!(fpm.len() as u64, held_fpm + quiet.fpm_rows, "fpm.csv has every row");
    let back = a.scan.fpm_rows();
    assert_eq!(back.iter().filter(|e| e.is_quiet()).count() as u64, quiet.fpm_rows);
    let read = back.iter().map(|e| (files[e.source as usize], e.line, e.message.as_str()));
    assert!(same_rows(read, &fpm), "fpm.csv rows differ from the rows read");
    // by_pool.csv counts every FPM row with a pool, quiet ones included.
    let pooled = back.iter().filter(|e| e.pool.is_some()).count() as u64;
    let by_pool = read_csv(&w.out.join("by_pool.csv"));
    let all: u64 = by_pool.iter().filter(|r| r["scope"] == "all").map(|r| r["events"].parse::<u64>().unwrap()).sum();
    assert_eq!(all, pooled);
}

/// The rows read (file, line, message) are the CSV's rows, as sets with repeats.
fn same_rows<'a>(read: impl Iterator<Item = (&'a str, u64, &'a str)>, csv: &[Row]) -> bool {
    let mut want: Vec<(String, u64, String)> = read.map(|(f, l, m)| (f.to_string(), l, m.to_string())).collect();
    let mut got: Vec<(String, u64, String)> =
        csv.iter().map(|r| (r["file"].clone(), r["line"].parse().unwrap(), r["message"].clone())).collect();
    want.sort();
    got.sort();
    want == got
}

/// TMPDIR not writable: the rows stay in memory, a warning says so, and every report is
/// byte-identical to the run that spilled, but for that warning in summary.json and
/// report.html.
#[test]
fn an_unwritable_temp_dir_keeps_the_rows_in_memory_with_the_same_reports() {
    let w = default_week();
    let out = tmp("quiet-no-tmpdir");
    let f = fmt_arg();
    let o = Command::new(bin())
        .env("TMPDIR", "/nonexistent/upcause-tmp")
        .args(["analyze", w.dir.to_str().unwrap(), "--log-format", &f, "-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let sum = read_json(&out.join("summary.json"));
    let diags = sum["diagnostics"].to_string();
    assert!(diags.contains("held in memory instead"), "{diags}");
    let (a, b) = (outputs(&w.out), outputs(&out));
    assert_eq!(a.len(), b.len());
    for ((na, ba), (nb, bb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        match na.as_str() {
            "summary.json" => {}
            "report.html" => {
                // The page lists the diagnostics: the same page without that block.
                let (ha, hb) = (String::from_utf8_lossy(ba), String::from_utf8_lossy(bb));
                let from = hb.find("<details><summary class=\"warn\">").expect("a diagnostics block");
                let to = from + hb[from..].find("</details>").unwrap() + "</details>".len();
                assert!(hb[from..to].contains("held in memory instead"));
                assert!(ha == format!("{}{}", &hb[..from], &hb[to..]), "report.html differs beyond the warning");
            }
            _ => assert!(ba == bb, "{na} differs when the quiet rows stay in memory"),
        }
    }
}

/// `merge` holds what `analyze` holds: the quiet rows of the runs it reads go back out of
/// memory as they are read (`aggregate::restore`), so a merge of the noisy week's one run
/// holds its failures and joinable lines only, and writes every file of the run byte for byte
/// (its name kept); with no writable temporary directory it holds them all, says so, and
/// writes the same files but for that warning.
#[test]
fn merge_keeps_the_quiet_rows_out_of_memory_and_writes_the_run_again() {
    use upcause::aggregate::store;
    let w = default_week();
    let lean = store::load_merged(std::slice::from_ref(&w.out), "m").unwrap();
    let full = store::load(&w.out).unwrap();
    let q = lean.events.quiet.as_ref().expect("quiet rows on a noisy error log");
    let (err, fpm) = (lean.events.err.height() as u64, lean.events.fpm.height() as u64);
    assert!(q.rows.rows > 2 * err, "{} quiet rows, {err} held", q.rows.rows);
    assert_eq!(q.rows.rows + err, full.events.err.height() as u64, "every error row, held or not");
    assert!(q.rows.fpm_rows > 0);
    assert_eq!(q.rows.fpm_rows + fpm, full.events.fpm.height() as u64, "every FPM row, held or not");
    assert_eq!(lean.events.req.height(), full.events.req.height());
    assert_eq!(lean.range(), full.range());

    // Merged into a directory of the run's own name, the run comes out again.
    let sum = read_json(&w.out.join("summary.json"));
    let name = sum["name"].as_str().unwrap();
    let merged = |tmpdir: &str, dir: &str| {
        let out = tmp(dir).join(name);
        let o = Command::new(bin())
            .env("TMPDIR", tmpdir)
            .args(["merge", w.out.to_str().unwrap(), "-q", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let spilled = merged(&std::env::temp_dir().to_string_lossy(), "merge-quiet");
    let (a, b) = (outputs(&w.out), outputs(&spilled));
    assert_eq!(a.iter().map(|x| &x.0).collect::<Vec<_>>(), b.iter().map(|x| &x.0).collect::<Vec<_>>());
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "merge of one run: {n} differs from the run's");
    }
    let held = merged("/nonexistent/upcause-tmp", "merge-quiet-no-tmpdir");
    let diags = read_json(&held.join("summary.json"))["diagnostics"].to_string();
    assert!(diags.contains("held in memory instead"), "{diags}");
    for ((n, x), (_, y)) in a.iter().zip(&outputs(&held)) {
        if !matches!(n.as_str(), "summary.json" | "report.html") {
            assert!(x == y, "merge with the rows held: {n} differs from the run's");
        }
    }
}

/// The merge that keeps quiet rows out of memory (`store::load_merged`) writes the files of
/// the merge that holds every row (`store::load` of each run, then `store::merge`), for a run
/// whose zone is not the merged run's: its rows' time texts would not read back in the merged
/// zone, so they are held, and only the first run's quiet rows leave memory.
#[test]
fn merge_out_of_memory_writes_what_the_held_merge_writes() {
    use upcause::aggregate::store;
    let w = default_week();
    let other = tmp("merge-zone-other");
    let conf = real().join("mixed/nginx.conf");
    let r = analyze(&[real().to_str().unwrap(), "--nginx-conf", conf.to_str().unwrap(), "--tz", "+05:30"], &other);
    assert!(r.code == 0 || r.code == 2, "{}", r.stderr);
    let dirs = [w.out.clone(), other.clone()];
    // The files of both merges are equal (`merge_both_ways`).
    let (lean, full, _) = merge_both_ways(&dirs, "merge");
    let week_quiet = store::load_merged(std::slice::from_ref(&w.out), "w").unwrap().events.quiet.unwrap().rows.rows;
    let q = lean.events.quiet.as_ref().expect("the week's quiet rows");
    assert_eq!(q.rows.rows, week_quiet, "only the week's rows left memory");
    let other_rows = store::load(&other).unwrap().events.err.height();
    assert!(other_rows > 0);
    assert_eq!(lean.events.err.height() + q.rows.rows as usize, full.events.err.height());
}

/// Runs of one `error.log` path (hosts of a fleet, or one host analysed more than once),
/// three lines in the same second, each a probe for a file (quiet, `true`) or an upstream
/// timeout (held); each run with `--host` its host, if given.
fn tied_runs(name: &str, runs: &[([bool; 3], Option<&str>)]) -> Vec<PathBuf> {
    let logs = tmp(&format!("{name}-logs"));
    let probe = r#"open() "/var/www/html/wp-login.php" failed (2: No such file or directory), client: 203.0.113.9, server: shop.example, request: "GET /wp-login.php HTTP/1.1", host: "shop.example""#;
    let timeout = r#"upstream timed out (110: Connection timed out) while reading response header from upstream, client: 198.51.100.7, server: shop.example, request: "GET /checkout HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "shop.example""#;
    let line = |conn: usize, msg: &str| format!("2026/11/22 04:14:46 [error] 4242#4242: *{conn} {msg}\n");
    let mut out = Vec::new();
    for (k, (probes, host)) in runs.iter().enumerate() {
        let text: String =
            probes.iter().enumerate().map(|(c, p)| line(10 * k + c, if *p { probe } else { timeout })).collect();
        std::fs::write(logs.join("error.log"), text).unwrap();
        let dir = tmp(&format!("{name}-run{k}"));
        let mut args = vec![logs.to_str().unwrap(), "--tz", "+00:00"];
        if let Some(h) = host {
            args.extend(["--host", h]);
        }
        let r = analyze(&args, &dir);
        assert!(r.code == 0 || r.code == 2, "{}", r.stderr);
        out.push(dir);
    }
    out
}

/// `merge` out of memory of `dirs` and the merge holding every row write the same files
/// (asserted): both runs, and the first's run directory.
fn merge_both_ways(dirs: &[PathBuf], name: &str) -> (Run, Run, PathBuf) {
    use upcause::aggregate::{report, store};
    let lean = store::load_merged(dirs, "m").unwrap();
    let full = store::merge(dirs.iter().map(|d| store::load(d).unwrap()).collect(), "m").unwrap();
    let write = |run: &Run, name: &str| {
        let out = tmp(name);
        let rep = report::build(run).unwrap();
        upcause::render::write_run(run, &rep, &out).unwrap();
        out
    };
    let (a, b) = (write(&lean, &format!("{name}-lean")), write(&full, &format!("{name}-held")));
    let (x, y) = (outputs(&a), outputs(&b));
    assert_eq!(x.iter().map(|x| &x.0).collect::<Vec<_>>(), y.iter().map(|x| &x.0).collect::<Vec<_>>());
    for ((n, x), (_, y)) in x.iter().zip(&y) {
        assert!(x == y, "{name}: {n}: the merge out of memory differs from the held merge");
    }
    (lean, full, a)
}

/// The quiet rows of a merge.
fn quiet_rows(run: &Run) -> u64 {
    run.events.quiet.as_ref().map_or(0, |q| q.rows.rows)
}

/// Rows tied on (time, file, line) across merged runs come in run order, held or quiet, as
/// in the merge that holds every row (the last build put the held row first, and a run's
/// quiet rows of a second before the other's); merged again with one of its inputs (a
/// fleet's merges merged), the merged run's rows keep their order too: out of memory when
/// each (file, machine) is one input, held when two inputs share both.
#[test]
fn merge_keeps_the_run_order_of_rows_tied_across_runs() {
    let (p, t) = (true, false);
    type Spec = Vec<([bool; 3], Option<&'static str>)>;
    let cases: [(&str, Spec, u64); 3] = [
        ("merge-tie-hosts", vec![([p, t, p], Some("web0")), ([t, p, p], Some("web1"))], 6),
        ("merge-tie", vec![([p, t, p], None), ([t, p, p], None)], 2),
        // This machine, another, this machine again: the first and third share (file,
        // machine), so the merged run's rows of that file are held in their stored order.
        ("merge-tie-three", vec![([p, t, p], None), ([t, p, p], Some("web1")), ([p, p, t], None)], 2),
    ];
    for (name, spec, quiet_again) in cases {
        let runs = tied_runs(name, &spec);
        let (lean, _, merged) = merge_both_ways(&runs, name);
        let probes = spec.iter().flat_map(|s| s.0).filter(|p| *p).count() as u64;
        assert_eq!(quiet_rows(&lean), probes, "{name}: the probes are quiet");
        // (line, connection): each line's rows, in run order.
        let rows = read_csv(&merged.join("errors.csv"));
        let order: Vec<(String, String)> = rows.iter().map(|r| (r["line"].clone(), r["conn"].clone())).collect();
        let want: Vec<(String, String)> = (0..3)
            .flat_map(|l| (0..spec.len()).map(move |k| ((l + 1).to_string(), (10 * k + l).to_string())))
            .collect();
        assert_eq!(order, want, "{name}");
        let (again, _, _) = merge_both_ways(&[merged, runs[0].clone()], &format!("{name}-again"));
        // The merged run's probes leave memory only where each names its machine.
        assert_eq!(quiet_rows(&again), quiet_again, "{name}: merged again");
    }
}
