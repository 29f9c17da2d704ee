//! Report outputs (issue 4): golden CSV/JSON of a captured scenario, events.parquet read
//! back against the CSVs, report.html in headless Chromium, hostile log content.
//!
//! Regenerate the golden files after an intended change with:
//!     UPCAUSE_BLESS=1 cargo test --test it golden

use crate::common::*;
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden_dir() -> PathBuf {
    root().join("tests/golden/mixed")
}

/// Text of an output with `generated_at` (the documented run-dependent field) removed.
fn comparable(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.contains("\"generated_at\"")).collect::<Vec<_>>().join("\n") + "\n"
}

#[test]
fn golden_csv_and_json_of_the_mixed_scenario() {
    let out = tmp("golden");
    // Relative input paths, so the file columns do not depend on where the repo lives.
    let r = analyze_in(
        &root(),
        &["testdata/real/mixed", "--nginx-conf", "testdata/real/mixed/nginx.conf", "--host", "golden"],
        &out,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".csv") || n == "summary.json" || n == "postmortem.md")
            .collect();
        v.sort();
        v
    };
    assert!(names.len() >= 15, "{names:?}");
    let bless = std::env::var_os("UPCAUSE_BLESS").is_some();
    let gd = golden_dir();
    if bless {
        std::fs::create_dir_all(&gd).unwrap();
    }
    let mut diffs = Vec::new();
    for n in &names {
        let got = comparable(&out.join(n));
        let gp = gd.join(n);
        if bless {
            std::fs::write(&gp, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&gp).unwrap_or_else(|_| {
            panic!("missing golden {}; run UPCAUSE_BLESS=1 cargo test --test it golden", gp.display())
        });
        if want != got {
            let first = want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(0);
            diffs.push(format!(
                "{n}: first difference at line {}\n  want: {}\n  got:  {}",
                first + 1,
                want.lines().nth(first).unwrap_or(""),
                got.lines().nth(first).unwrap_or("")
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "outputs differ from tests/golden/mixed (UPCAUSE_BLESS=1 to accept):\n{}",
        diffs.join("\n")
    );
}

#[test]
fn events_parquet_reads_back_and_matches_the_csvs() {
    let out = tmp("parquet");
    let d = real().join("worker_segfault");
    let c = d.join("nginx.conf");
    let r = analyze(&[d.to_str().unwrap(), "--nginx-conf", c.to_str().unwrap()], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let df = ParquetReader::new(std::fs::File::open(out.join("events.parquet")).unwrap()).finish().unwrap();
    let cols: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
    for (i, c) in upcause::aggregate::run::EVENT_COLUMNS.iter().enumerate() {
        assert_eq!(&cols[i], c, "column {i}");
    }
    assert!(cols.contains(&"incident".to_string()) && cols.contains(&"contributing".to_string()));
    assert!(matches!(df.column("ts").unwrap().dtype(), DataType::Datetime(TimeUnit::Milliseconds, _)));
    let rec = df.column("record").unwrap().str().unwrap().clone();
    let count = |k: &str| rec.iter().filter(|v| *v == Some(k)).count();
    let csv_rows = |f: &str| read_csv(&out.join(f));
    let (req, err, fpm) = (csv_rows("requests.csv"), csv_rows("errors.csv"), csv_rows("fpm.csv"));
    assert!(!req.is_empty() && !err.is_empty() && !fpm.is_empty());
    assert_eq!(count("request"), req.len());
    assert_eq!(count("error"), err.len());
    assert_eq!(count("fpm"), fpm.len());
    // Same values in the same order: the first request row's cause and evidence.
    let req_df = df.clone().lazy().filter(col("record").eq(lit("request"))).collect().unwrap();
    let cause = req_df.column("cause").unwrap().str().unwrap().clone();
    let ev = req_df.column("evidence").unwrap().str().unwrap().clone();
    for (i, row) in req.iter().enumerate() {
        assert_eq!(cause.get(i), Some(row["cause"].as_str()));
        assert_eq!(ev.get(i).unwrap_or(""), row["evidence"].as_str());
    }
    // The counters round-trip: requests counted in summary.json equal the seconds table.
    let secs = ParquetReader::new(std::fs::File::open(out.join("counters/seconds.parquet")).unwrap()).finish().unwrap();
    let total: u64 = secs.column("total").unwrap().cast(&DataType::UInt64).unwrap().u64().unwrap().sum().unwrap();
    let sum = read_json(&out.join("summary.json"));
    assert_eq!(sum["requests"]["total"].as_u64().unwrap(), total);
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

struct Browser {
    dom: String,
    log: String,
}

/// Load a page in headless Chromium: its DOM after load, its console log, a screenshot.
fn browse(page: &Path, shot: &Path) -> Option<Browser> {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var_os("UPCAUSE_REQUIRE_BROWSER").is_none(),
            "Chromium is required (UPCAUSE_REQUIRE_BROWSER) but not installed: apt-get install chromium"
        );
        eprintln!("NOTE: chromium not installed; browser checks skipped (.ci/run installs it)");
        return None;
    };
    let profile = tmp(&format!("chromium-{}", shot.file_stem().unwrap().to_string_lossy()));
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let url = format!("file://{}", page.display());
    let run = |extra: &[String]| {
        Command::new(&bin)
            .args(base)
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium")
    };
    let dom = run(&["--dump-dom".into()]);
    let shot_run = run(&["--window-size=1200,1600".into(), format!("--screenshot={}", shot.display())]);
    Some(Browser {
        dom: String::from_utf8_lossy(&dom.stdout).into_owned(),
        log: String::from_utf8_lossy(&dom.stderr).into_owned() + &String::from_utf8_lossy(&shot_run.stderr),
    })
}

/// Console messages Chromium logged for the page (`CONSOLE(...)` lines), and CSP violations.
fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Content Security Policy") || l.contains("Uncaught"))
        .collect()
}

fn png_is_not_blank(path: &Path) -> bool {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = &buf[..info.buffer_size()];
    let first = &px[..3];
    let differing = px.chunks(info.color_type.samples()).filter(|p| &p[..3] != first).count();
    differing * 100 > px.len() / info.color_type.samples()
}

#[test]
fn report_html_renders_in_chromium() {
    let out = tmp("browser");
    let d = real().join("mixed");
    let c = d.join("nginx.conf");
    let r = analyze(&[d.to_str().unwrap(), "--nginx-conf", c.to_str().unwrap()], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.len() < 2_000_000, "report.html is {} bytes", html.len());
    // Offline: no script, no external stylesheet, image or font reference.
    for bad in ["<script", "<link", " src=", " href=", "url(", "@import"] {
        assert!(!html.contains(bad), "report.html contains {bad}");
    }
    assert!(html.contains("Content-Security-Policy"));
    let shot = out.join("report.png");
    let Some(b) = browse(&out.join("report.html"), &shot) else { return };
    assert!(console_errors(&b.log).is_empty(), "console: {:?}", console_errors(&b.log));
    assert!(b.dom.matches("<svg").count() >= 4, "charts missing");
    assert!(b.dom.contains("By cause") && b.dom.contains("By upstream") && b.dom.matches("<table").count() >= 6);
    assert!(b.dom.contains("I1") && b.dom.contains("worker_crash") && b.dom.contains("slow_backend"));
    // Issue 15: the page leads with the incidents by impact, then the background, then the
    // run's charts; a cause has one colour in every chart.
    let at = |s: &str| b.dom.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(at("Incidents by impact") < at(">Background<") && at(">Background<") < at(">Timeline<"));
    for cause in ["slow_backend", "backend_down", "worker_crash"] {
        let fills: std::collections::BTreeSet<&str> = b
            .dom
            .match_indices(&format!(": {cause} "))
            .filter_map(|(i, _)| {
                let rect = b.dom[..i].rfind("<rect")?;
                let f = b.dom[rect..i].find("fill=\"")? + rect + 6;
                Some(&b.dom[f..f + b.dom[f..].find('"')?])
            })
            .collect();
        assert_eq!(fills.len(), 1, "{cause} drawn in {fills:?}");
    }
    assert!(png_is_not_blank(&shot), "screenshot {} looks blank", shot.display());
}

/// Attacker-controlled text (URIs, user agents, hosts) must not become markup.
#[test]
fn hostile_log_content_is_escaped() {
    let dir = tmp("hostile-in");
    let out = tmp("hostile-out");
    let evil_uri = r#"/x?a=<script>alert(1)</script>&b="><img src=x onerror=alert(2)>"#;
    let evil_host = r#"e.test"><svg onload=alert(3)>"#;
    let mut access = String::new();
    let mut error = String::new();
    for i in 0..5 {
        access.push_str(&format!(
            "10.0.0.{i} - - [22/Nov/2026:03:41:0{i} +0100] \"GET {evil_uri}&n={i} HTTP/1.1\" 502 150 \"javascript:alert(4)\" \"<script src=//evil.example/x.js></script>\"\n"
        ));
        error.push_str(&format!(
            "2026/11/22 03:41:0{i} [error] 7#7: *{i} connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.{i}, server: {evil_host}, request: \"GET {evil_uri}&n={i} HTTP/1.1\", upstream: \"http://127.0.0.1:1/<iframe src=javascript:alert(5)>\", host: \"{evil_host}\", referrer: \"javascript:alert(6)\"\n"
        ));
    }
    std::fs::write(dir.join("access.log"), access).unwrap();
    std::fs::write(dir.join("error.log"), error).unwrap();
    let r = analyze(&[dir.to_str().unwrap()], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The hostile strings are there, escaped.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "hostile URI not shown escaped");
    assert!(html.contains("&lt;svg onload=alert(3)&gt;") || html.contains("svg onload"), "hostile host not shown");
    for bad in ["<script", "<img", "<iframe", "<svg onload", "href=\"javascript:", "src=\"javascript:"] {
        assert!(!html.contains(bad), "{bad} appears unescaped in report.html");
    }
    if let Some(b) = browse(&out.join("report.html"), &out.join("hostile.png")) {
        assert!(console_errors(&b.log).is_empty(), "console: {:?}", console_errors(&b.log));
        for tag in ["<script", "<img", "<iframe"] {
            assert!(!b.dom.contains(tag), "{tag} element in the DOM");
        }
        assert!(!b.dom.contains("<svg onload"), "event handler element in the DOM");
    }
}
