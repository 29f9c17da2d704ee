//! `compare`, `history` and `merge` (issue 5) on runs of the captured scenarios.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn upcause(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin()).current_dir(root()).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

const CONF: &str = "testdata/real/mixed/nginx.conf";

fn analyze_scenarios(scenarios: &[&str], host: &str, out: &Path) {
    let dirs: Vec<String> = scenarios.iter().map(|s| format!("testdata/real/{s}")).collect();
    let mut args: Vec<&str> = dirs.iter().map(String::as_str).collect();
    args.extend(["--nginx-conf", CONF, "--host", host]);
    let r = analyze_in(&root(), &args, out);
    assert!(r.code == 0, "{}", r.stderr);
}

/// Failed requests per cause in a run's requests.csv.
fn causes(dir: &Path) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for r in read_csv(&dir.join("requests.csv")) {
        if r["outcome"] == "failed" {
            *m.entry(r["cause"].clone()).or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn compare_two_incidents_gives_the_expected_deltas() {
    let (a, b, out) = (tmp("cmp-a"), tmp("cmp-b"), tmp("cmp-out"));
    analyze_scenarios(&["max_children_unix"], "h", &a);
    analyze_scenarios(&["worker_segfault"], "h", &b);
    let (code, stdout, stderr) =
        upcause(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Causes that changed most"), "{stdout}");
    let (ca, cb) = (causes(&a), causes(&b));
    assert!(
        ca.get("fpm_pool_exhausted").copied().unwrap_or(0) > 20 && cb.get("worker_crash").copied().unwrap_or(0) >= 12
    );
    let rows = read_csv(&out.join("compare_causes.csv"));
    let mut seen = 0;
    for r in &rows {
        let (x, y) = (ca.get(&r["cause"]).copied().unwrap_or(0), cb.get(&r["cause"]).copied().unwrap_or(0));
        assert_eq!(r["a_failed"].parse::<i64>().unwrap(), x, "{r:?}");
        assert_eq!(r["b_failed"].parse::<i64>().unwrap(), y, "{r:?}");
        assert_eq!(r["delta"].parse::<i64>().unwrap(), y - x);
        let want = match (x, y) {
            (0, _) => "new",
            (_, 0) => "gone",
            (x, y) if y > x => "up",
            (x, y) if y < x => "down",
            _ => "same",
        };
        assert_eq!(r["change"], want);
        seen += 1;
    }
    assert_eq!(seen, ca.keys().chain(cb.keys()).collect::<std::collections::BTreeSet<_>>().len());
    let by_cause: BTreeMap<&str, &Row> = rows.iter().map(|r| (r["cause"].as_str(), r)).collect();
    assert_eq!(by_cause["fpm_pool_exhausted"]["change"], "gone");
    assert_eq!(by_cause["worker_crash"]["change"], "new");
    // The biggest change leads.
    let deltas: Vec<i64> = rows.iter().map(|r| r["delta"].parse::<i64>().unwrap().abs()).collect();
    assert!(deltas.windows(2).all(|w| w[0] >= w[1]));
    let summary = read_csv(&out.join("compare_summary.csv"));
    let inc = summary.iter().find(|r| r["measure"] == "incidents").unwrap();
    assert_eq!((inc["a"].as_str(), inc["b"].as_str()), ("1.0", "1.0"));
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));
}

#[test]
fn compare_two_windows_of_one_input() {
    // The rotated scenario has two separate FPM stops (labelled windows 1 and 3).
    let w = read_tsv(&real().join("rotated/windows.tsv"));
    let stops: Vec<&Row> = w.iter().filter(|r| r["cause"] == "fpm_socket_missing").collect();
    assert_eq!(stops.len(), 2);
    let win = |r: &Row| format!("{}..{}", shift(&r["start"], -3), shift(&r["end"], 3));
    let out = tmp("cmp-win");
    let (wa, wb) = (win(stops[0]), win(stops[1]));
    let (code, _, stderr) = upcause(&[
        "compare",
        "testdata/real/rotated",
        "--nginx-conf",
        "testdata/real/rotated/nginx.conf",
        "--window-a",
        &wa,
        "--window-b",
        &wb,
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let labels = read_tsv(&real().join("rotated/labels.tsv"));
    let rows = read_csv(&out.join("compare_causes.csv"));
    let r = rows.iter().find(|r| r["cause"] == "fpm_socket_missing").expect("fpm_socket_missing row");
    let (a, b) = (r["a_failed"].parse::<i64>().unwrap(), r["b_failed"].parse::<i64>().unwrap());
    // Both windows hold one FPM stop; together they are every labelled failure of that kind.
    let labelled = labels.iter().filter(|l| l["cause"] == "fpm_socket_missing").count() as i64;
    assert!(a > 0 && b > 0, "{a} {b}");
    assert_eq!(a + b, labelled);
    assert!(rows.iter().all(|r| r["cause"] != "worker_crash" || r["a_failed"] == "0" && r["b_failed"] == "0"));
}

/// RFC 3339 time shifted by seconds, same offset.
fn shift(t: &str, secs: i64) -> String {
    let d = chrono::DateTime::parse_from_rfc3339(t).unwrap() + chrono::Duration::seconds(secs);
    d.to_rfc3339()
}

#[test]
fn merge_of_two_hosts_equals_one_run_over_all_inputs() {
    // The scenarios of one capture run (2026-11-22): correlation reads evidence across every
    // log of a run (an FPM stop line in another scenario's log minutes away can raise a
    // verdict's confidence), so a single run and a merge of two hosts agree only when each
    // host's half holds what its verdicts rest on; this split of this capture does.
    let mut names: Vec<String> = std::fs::read_dir(real())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("labels.tsv").exists())
        .filter(|e| {
            let head = std::fs::read_to_string(e.path().join("access.log")).unwrap_or_default();
            head.lines().next().is_some_and(|l| l.contains("/Nov/2026:"))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 30, "{names:?}");
    let ha: Vec<&str> = names.iter().step_by(2).map(String::as_str).collect();
    let hb: Vec<&str> = names.iter().skip(1).step_by(2).map(String::as_str).collect();
    let (ra, rb, all, merged) = (tmp("merge-a"), tmp("merge-b"), tmp("merge-all"), tmp("merge-out"));
    analyze_scenarios(&ha, "host-a", &ra);
    analyze_scenarios(&hb, "host-b", &rb);
    let every: Vec<&str> = names.iter().map(String::as_str).collect();
    analyze_scenarios(&every, "single", &all);
    let (code, _, stderr) =
        upcause(&["merge", ra.to_str().unwrap(), rb.to_str().unwrap(), "--out", merged.to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let csvs: Vec<PathBuf> = std::fs::read_dir(&all)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    assert!(csvs.len() >= 14, "{csvs:?}");
    let strip_machine = |p: &Path| -> String {
        let mut r = csv::Reader::from_path(p).unwrap();
        let h = r.headers().unwrap().clone();
        let keep: Vec<usize> = (0..h.len()).filter(|&i| &h[i] != "machine").collect();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(keep.iter().map(|&i| &h[i])).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            w.write_record(keep.iter().map(|&i| &rec[i])).unwrap();
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    };
    for p in &csvs {
        let name = p.file_name().unwrap();
        if name == "by_machine.csv" {
            continue;
        }
        let (x, y) = (strip_machine(p), strip_machine(&merged.join(name)));
        assert!(x == y, "{}: merged run differs from the single run", name.to_string_lossy());
        let raw = std::fs::read_to_string(p).unwrap();
        if raw.lines().next().unwrap_or("").split(',').any(|c| c == "machine") {
            let m = std::fs::read_to_string(merged.join(name)).unwrap();
            assert!(
                m.contains("host-a") && m.contains("host-b") && !m.contains("single"),
                "{}",
                name.to_string_lossy()
            );
        }
    }
    // by_machine.csv: the single run's failures per scope, split by the host they happened on
    // (each host's own run says the same of its half).
    let per_scope = |rows: &[Row]| -> std::collections::BTreeMap<(String, String), u64> {
        let mut m = std::collections::BTreeMap::new();
        for r in rows {
            *m.entry((r["scope"].clone(), r["machine"].clone())).or_insert(0) += r["failed"].parse::<u64>().unwrap();
        }
        m
    };
    let single = per_scope(&read_csv(&all.join("by_machine.csv")));
    let split = per_scope(&read_csv(&merged.join("by_machine.csv")));
    assert!(single.keys().all(|k| k.1 == "single") && split.keys().all(|k| k.1 == "host-a" || k.1 == "host-b"));
    let mut summed = std::collections::BTreeMap::new();
    for ((scope, _), n) in &split {
        *summed.entry((scope.clone(), "single".to_string())).or_insert(0) += n;
    }
    assert_eq!(summed, single);
    // Each host's requests are its own run's total.
    let merged_rows = read_csv(&merged.join("by_machine.csv"));
    for (h, dir) in [("host-a", &ra), ("host-b", &rb)] {
        let own = per_scope(&read_csv(&dir.join("by_machine.csv")));
        assert_eq!(own.get(&("all".to_string(), h.to_string())), split.get(&("all".to_string(), h.to_string())), "{h}");
        let total = read_json(&dir.join("summary.json"))["requests"]["total"].as_u64().unwrap().to_string();
        assert!(merged_rows.iter().filter(|r| r["machine"] == h).all(|r| r["requests"] == total), "{h} {total}");
    }
    // The terminal names the machines of each incident, the HTML report has the table.
    let (code, stdout, stderr) =
        upcause(&["merge", ra.to_str().unwrap(), rb.to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  #")).collect();
    assert!(!lines.is_empty() && lines.iter().all(|l| l.contains(" of 2 machines: ")), "{stdout}");
    assert!(std::fs::read_to_string(merged.join("report.html")).unwrap().contains("<h3>By machine</h3>"));
    assert!(!std::fs::read_to_string(all.join("report.html")).unwrap().contains("<h3>By machine</h3>"));
    assert!(std::fs::read_to_string(merged.join("postmortem.md")).unwrap().contains(" of 2) | "));
    assert!(!std::fs::read_to_string(all.join("postmortem.md")).unwrap().contains("| machines ("));
    let sum = read_json(&merged.join("summary.json"));
    assert_eq!(sum["machines"], serde_json::json!(["host-a", "host-b"]));
    assert!(merged.join("report.html").exists() && merged.join("events.parquet").exists());

    // history over the three runs, ordered by time.
    let hist = tmp("history");
    let (code, _, stderr) = upcause(&[
        "history",
        rb.to_str().unwrap(),
        ra.to_str().unwrap(),
        all.to_str().unwrap(),
        "--out",
        hist.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let rows = read_csv(&hist.join("history.csv"));
    let starts: Vec<i64> = rows.iter().map(|r| ms(&r["start"])).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "history not ordered by time");
    let total: i64 = rows.iter().filter(|r| r["run"] == "merge-all").map(|r| r["failed"].parse::<i64>().unwrap()).sum();
    assert_eq!(total, causes(&all).values().sum::<i64>());
    assert!(std::fs::read_to_string(hist.join("history.html")).unwrap().contains("<svg"));

    // Issue 16: history reads only each run's summary.json: the same table from directories
    // that hold nothing else.
    let lean = tmp("history-lean-runs");
    let mut args: Vec<String> = vec!["history".into()];
    for (src, name) in [(&rb, "merge-b"), (&ra, "merge-a"), (&all, "merge-all")] {
        let d = lean.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(src.join("summary.json"), d.join("summary.json")).unwrap();
        args.push(d.to_string_lossy().into_owned());
    }
    let hist2 = tmp("history-lean");
    args.extend(["--out".into(), hist2.to_string_lossy().into_owned(), "-q".into()]);
    let (code, _, stderr) = upcause(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(hist2.join("history.csv")).unwrap(),
        std::fs::read_to_string(hist.join("history.csv")).unwrap()
    );
}

#[test]
fn clear_errors_for_missing_empty_and_incompatible_runs() {
    let out = tmp("cmp-errors");
    let (code, _, err) =
        upcause(&["compare", "/nonexistent/run-a", "/nonexistent/run-b", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/run-a") && err.contains("no such run directory"), "{err}");
    let notrun = tmp("cmp-notrun");
    let (code, _, err) = upcause(&["merge", notrun.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not a run directory"), "{err}");
    // A run written by another schema version.
    let a = tmp("cmp-schema");
    analyze_scenarios(&["php_fatal"], "h", &a);
    let p = a.join("summary.json");
    let text = regex::Regex::new(r#""schema_version": \d+,"#)
        .unwrap()
        .replace(&std::fs::read_to_string(&p).unwrap(), "\"schema_version\": 999,")
        .into_owned();
    std::fs::write(&p, text).unwrap();
    let (code, _, err) = upcause(&["history", a.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("schema version 999") && err.contains("re-run"), "{err}");
    // An empty run (no line read in the window).
    let e = tmp("cmp-empty");
    let r = analyze_in(&root(), &["testdata/real/php_fatal", "--since", "2001-01-01", "--until", "2001-01-02"], &e);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (code, _, err) =
        upcause(&["compare", e.to_str().unwrap(), e.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn a_fleet_merge_names_the_machine_of_a_line_where_hosts_share_its_path() {
    // The documented fleet use: each host analyses its own logs, at the same paths on every
    // host (`/var/log/nginx/error.log`), and the runs are merged. Two "hosts" here analyse one
    // small production-shaped day from one directory: the same paths, the same lines.
    use crate::corpus::{self, Config};
    let dir = tmp("fleet-logs");
    corpus::generate(&dir, &Config { size_mb: 8, seed: 3, days: 1, outages: 4, gzip: false, ..Config::default() });
    let f = crate::week::fmt_arg();
    let (a, b, merged) = (tmp("fleet-web1"), tmp("fleet-web2"), tmp("fleet-merged"));
    for (host, out) in [("web1", &a), ("web2", &b)] {
        let r = analyze(&[dir.to_str().unwrap(), "--log-format", &f, "--host", host], out);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let (code, _, stderr) =
        upcause(&["merge", a.to_str().unwrap(), b.to_str().unwrap(), "--out", merged.to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let lifecycle = |run: &Path| -> Vec<String> {
        let inc = read_csv(&run.join("incidents.csv"));
        inc.iter().flat_map(|r| r["lifecycle"].split("; ").map(str::to_string).collect::<Vec<_>>()).collect()
    };
    let earliest = |run: &Path| -> Vec<String> {
        read_csv(&run.join("incidents.csv")).iter().map(|r| r["earliest_evidence"].clone()).collect()
    };
    let path = dir.display().to_string();
    // One host's run: one machine, no shared path, places as `file:line`.
    let own = lifecycle(&a);
    assert!(own.iter().any(|l| l.contains(&format!("({path}/php-fpm.log:"))), "{own:?}");
    assert!(earliest(&a).iter().all(|e| e.starts_with(&path)), "{:?}", earliest(&a));
    // The merged run names the machine wherever a report shows a line's place: an incident's
    // lifecycle lines and earliest evidence (incidents.csv, summary.json, report.html, the
    // post-mortem), report.html's samples and the post-mortem's quotes.
    let life = lifecycle(&merged);
    assert!(life.iter().any(|l| l.contains(&format!("(web1:{path}/php-fpm.log:"))), "{life:?}");
    assert!(life.iter().any(|l| l.contains(&format!("(web2:{path}/php-fpm.log:"))), "{life:?}");
    assert!(life.iter().filter(|l| !l.is_empty()).all(|l| l.contains("(web1:") || l.contains("(web2:")), "{life:?}");
    let first = earliest(&merged);
    assert!(
        !first.is_empty()
            && first.iter().all(|e| e.starts_with(&format!("web1:{path}")) || e.starts_with(&format!("web2:{path}"))),
        "{first:?}"
    );
    let html = std::fs::read_to_string(merged.join("report.html")).unwrap();
    assert!(html.contains(&format!("<pre>web1:{path}/error.log:")) && !html.contains(&format!("<pre>{path}")));
    let pm = std::fs::read_to_string(merged.join("postmortem.md")).unwrap();
    let quoted: Vec<&str> = pm.lines().filter(|l| l.contains("/error.log:")).collect();
    assert!(
        quoted.iter().any(|l| l.starts_with("web1:")) && quoted.iter().all(|l| !l.starts_with(&path)),
        "{quoted:?}"
    );
    // The row files keep `file:line` evidence: each row has its machine, and a verdict's
    // evidence is in its own machine's logs.
    let req = read_csv(&merged.join("requests.csv"));
    assert!(req.iter().any(|r| r["machine"] == "web2" && r["evidence"].starts_with(&path)));
}
