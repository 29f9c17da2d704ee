//! Hostile input of issues 12 and 13: stamps far from the rest, look-alike files, a closed
//! stdout and a panic, one client address behind a load balancer, and truncated, corrupt and
//! misnamed zstd, xz and bzip2 files. No panic, nothing lost, accounting reconciles (the
//! helpers of `hostile.rs`).

use crate::common::*;
use crate::hostile::{check_accounting, diags, hostile, input, run_case};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Peak anonymous memory (MiB) that `UPCAUSE_MEMSTATS` recorded.
fn peak_anon_mib(path: &Path) -> u64 {
    let t = std::fs::read_to_string(path).unwrap();
    let i = t.find("anonymous ").unwrap() + "anonymous ".len();
    t[i..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn issue12_far_off_stamps_stay_in_the_tables_and_out_of_the_timeline() {
    // 100 failing requests on 2026-11-20 14:00 with their error lines, one access line
    // stamped 1970 and one (failing) stamped 9999: the timeline once had 70 million rows.
    let out = tmp("hostile-farstamp");
    let mem = out.join("memstats.txt");
    let o = Command::new(bin())
        .args(["analyze", hostile("farstamp").to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
        .env("UPCAUSE_MEMSTATS", &mem)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(peak_anon_mib(&mem) < 100, "{}", std::fs::read_to_string(&mem).unwrap());
    let sum = read_json(&out.join("summary.json"));
    check_accounting(&sum);
    // The timeline covers the dense range: 14:00:00 .. 14:00:59 in 10 s buckets.
    let tl = read_csv(&out.join("timeline.csv"));
    assert_eq!(tl.len(), 6, "{:?}", tl.first());
    assert_eq!(tl[0]["bucket_start"], "2026-11-20T14:00:00Z");
    assert_eq!(tl.iter().map(|r| r["requests"].parse::<u64>().unwrap()).sum::<u64>(), 100);
    assert_eq!(sum["time_range"]["start"], "2026-11-20T14:00:00Z");
    assert_eq!(sum["time_range"]["end"], "2026-11-20T14:00:59Z");
    // The outliers are named with file and line, and counted.
    let d: Vec<&Value> = sum["diagnostics"].as_array().unwrap().iter().collect();
    let far: Vec<&&Value> = d.iter().filter(|x| x["message"].as_str().unwrap().contains("far from the rest")).collect();
    assert_eq!(far.len(), 1, "{d:?}");
    assert!(far[0]["file"].as_str().unwrap().ends_with("farstamp/access.log"));
    assert_eq!(far[0]["line"].as_u64(), Some(41));
    let m = far[0]["message"].as_str().unwrap();
    assert!(m.starts_with("2 lines stamped far from the rest"), "{m}");
    assert!(m.contains("41 (1970-01-01T00:00:01Z)") && m.contains("(9999-12-31T23:59:59Z)"), "{m}");
    // Their events are still in the tables: the failing 9999 request among the 101.
    let req = read_csv(&out.join("requests.csv"));
    assert_eq!(req.len(), 101);
    assert!(req.iter().any(|r| r["time"] == "9999-12-31T23:59:59Z" && r["status"] == "502"));
    assert_eq!(sum["requests"]["total"].as_u64(), Some(102));
}

#[test]
fn issue12_look_alike_files_are_both_read() {
    // Same size and the same first 64 KiB (the old copy check), different later: two hosts'
    // logs that start alike. Both are read; a real copy is still read once.
    let d = tmp("lookalike-in");
    let line = |i: u32, s: u32| {
        format!("10.0.0.1 - - [22/Nov/2026:03:41:07 +0100] \"GET /x?i={i:06} HTTP/1.1\" {s} 1 \"-\" \"x\"\n")
    };
    let head: String = (0..2000).map(|i| line(i, 200)).collect();
    assert!(head.len() > 64 << 10);
    let a = head.clone() + &(2000..2100).map(|i| line(i, 200)).collect::<String>();
    let b = head + &(2000..2100).map(|i| line(i, 502)).collect::<String>();
    assert_eq!(a.len(), b.len());
    std::fs::write(d.join("web1.access.log"), &a).unwrap();
    std::fs::write(d.join("web2.access.log"), &b).unwrap();
    std::fs::write(d.join("web3.access.log"), &a).unwrap();
    let (_, sum) = run_case("lookalike", &[d.to_str().unwrap()]);
    let paths: Vec<&str> = sum["inputs"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(
        paths.iter().any(|p| p.ends_with("web1.access.log")) && paths.iter().any(|p| p.ends_with("web2.access.log"))
    );
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert_eq!(sum["requests"]["total"].as_u64(), Some(4200));
    assert_eq!(sum["requests"]["failed"].as_u64(), Some(100));
    let dg = diags(&sum);
    assert!(
        dg.iter()
            .any(|x| x.contains("web3.access.log") && x.contains("identical to") && x.contains("compared in full")),
        "{dg:?}"
    );
}

#[test]
fn issue12_a_closed_stdout_is_fine_and_a_panic_stays_a_crash() {
    // The terminal summary into a pipe closed before it is written: exit 0, nothing on stderr.
    let out = tmp("closed-stdout");
    let mut child = Command::new(bin())
        .args(["analyze", hostile("clock").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    // A panic whose message mentions a broken pipe is still a crash (it used to exit 0).
    let o = Command::new(bin())
        .args(["analyze", hostile("clock").to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
        .env("UPCAUSE_TEST_PANIC", "failed printing to stdout: Broken pipe (os error 32)")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(101));
    assert!(String::from_utf8_lossy(&o.stderr).contains("internal error"));
}

#[test]
fn issue12_one_client_address_behind_a_load_balancer() {
    // Every request from one address (no real_ip), the same URI failing 2,000 times in 20 s,
    // each with its own error line: each line joins its own request (it used to join the
    // first request of its second, leaving the rest to a quadratic fallback).
    let d = tmp("lb-in");
    let (mut acc, mut err) = (String::new(), String::new());
    for i in 0..2000u32 {
        let s = i / 100;
        acc += &format!(
            "10.9.9.9 - - [22/Nov/2026:03:41:{s:02} +0100] \"GET /health HTTP/1.1\" 502 157 \"-\" \"lb\" rt=0.000 ua=\"127.0.0.1:9000\" us=\"502\"\n"
        );
        err += &format!(
            "2026/11/22 03:41:{s:02} [error] 7#7: *{i} connect() failed (111: Connection refused) while connecting to upstream, client: 10.9.9.9, server: h.test, request: \"GET /health HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"h.test\"\n"
        );
    }
    std::fs::write(d.join("access.log"), acc).unwrap();
    std::fs::write(d.join("error.log"), err).unwrap();
    let fmt = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" rt=$request_time ua=\"$upstream_addr\" us=\"$upstream_status\"";
    let (r, _) = run_case("lb", &[d.to_str().unwrap(), "--log-format", fmt]);
    let req = read_csv(&r.out.join("requests.csv"));
    assert_eq!(req.len(), 2000);
    let mut evidence = std::collections::HashSet::new();
    for x in &req {
        // (The peer never answered in the window: a wrong address, as far as the logs tell.)
        assert_eq!((x["proximate"].as_str(), x["cause"].as_str()), ("async_connect_refused", "upstream_misconfigured"));
        assert!(!x["detail"].contains("client and time only"), "{x:?}");
        assert!(evidence.insert(x["evidence"].clone()), "two requests share {}", x["evidence"]);
    }
    // Deterministic: the k-th request of a second takes the k-th line of that second.
    let line_of = |e: &str| e.rsplit(':').next().unwrap().parse::<u64>().unwrap();
    for x in &req {
        assert_eq!(line_of(&x["evidence"]), x["line"].parse::<u64>().unwrap(), "{x:?}");
    }
}

#[test]
fn issue13_zstd_xz_bzip2_truncated_corrupt_and_misnamed() {
    let (r, sum) = run_case("codecs", &[hostile("codecs").to_str().unwrap()]);
    assert_eq!(r.code, 2, "problems must give exit code 2");
    let dg = diags(&sum);
    for (sfx, codec, unit, n) in
        [("zst", "zstd", "frame", "2"), ("xz", "xz", "stream", "3"), ("bz2", "bzip2", "stream", "4")]
    {
        let t = input(&sum, &format!("truncated.access.log.{n}.{sfx}"));
        assert_eq!(t["compression"], codec);
        assert!(
            dg.iter().any(|x| x.contains(&format!("truncated.access.log.{n}.{sfx}"))
                && x.contains(&format!("{codec} file truncated at byte"))),
            "{dg:?}"
        );
        // The frames or streams before and after a corrupt one are read (1,500 lines each).
        let c = input(&sum, &format!("corrupt-middle.access.log.{}.{sfx}", n.parse::<u32>().unwrap() + 3));
        assert_eq!(c["parsed"].as_u64(), Some(3000), "{codec}");
        assert!(
            dg.iter()
                .any(|x| x.contains(&format!("corrupt {codec} {unit} at byte")) && x.contains("resumed at the next")),
            "{dg:?}"
        );
    }
    // zstd and xz keep what decoded before the cut; bzip2 decodes whole 900 kB blocks only.
    assert!(input(&sum, "truncated.access.log.2.zst")["parsed"].as_u64().unwrap() > 1000);
    assert!(input(&sum, "truncated.access.log.3.xz")["parsed"].as_u64().unwrap() > 1000);
    let named = input(&sum, "zstd-named.access.log.9.gz");
    assert_eq!((named["compression"].as_str(), named["parsed"].as_u64()), (Some("zstd"), Some(100)));
    assert!(dg.iter().any(|x| x.contains("zstd data under a .gz name")), "{dg:?}");
    let skipped = sum["skipped_files"].as_array().unwrap();
    assert!(skipped.iter().any(|s| s["reason"].as_str().unwrap().contains("compressed with lz4")), "{skipped:?}");
}

/// A live file truncated between the listing and the reading (logrotate's copytruncate) is
/// named as having shrunk, with both sizes: its lost lines are not silently missing.
#[test]
fn a_file_truncated_between_listing_and_reading_is_named() {
    let d = tmp("shrank-before-open");
    let p = d.join("access.log");
    let line = "10.0.0.1 - - [22/Nov/2026:03:41:07 +0100] \"GET /live HTTP/1.1\" 502 1 \"-\" \"x\"\n";
    std::fs::write(&p, line.repeat(100)).unwrap();
    let args = upcause::cli::AnalyzeArgs { paths: vec![d.display().to_string()], quiet: true, ..Default::default() };
    let mut cfg = upcause::config::Config::from_args(&args).unwrap();
    let found = upcause::discover::discover(&cfg.inputs, &mut cfg.formats).unwrap();
    assert_eq!(found.sources.len(), 1);
    let listed = found.sources[0].size;
    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(10 * line.len() as u64).unwrap();
    let classifier = upcause::classify::Classifier::new().unwrap();
    let zone = upcause::model::Zone::Fixed(0);
    let ctx = upcause::scan::ScanCtx {
        sources: &found.sources,
        formats: &cfg.formats.formats,
        classifier: &classifier,
        zone: &zone,
        since: None,
        until: None,
        progress: &|_| {},
        chunk_size: 1 << 20,
        quiet: None,
        fpm_clock_ms: 0,
    };
    let out = upcause::scan::scan(&ctx);
    let shrank: Vec<_> = out.diags.iter().filter(|x| x.message.contains("shrank")).collect();
    assert_eq!(shrank.len(), 1, "{:?}", out.diags);
    assert!(shrank[0].message.contains(&format!("{listed} bytes when listed, {} when opened", 10 * line.len())));
    assert_eq!(out.stats[0].lines, 10);
    assert_eq!(out.requests.len(), 10);
}
