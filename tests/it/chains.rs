//! Issue 14 end to end: why FPM was down (its failed start named in the verdict of the
//! requests it failed), PHP's own error log joined to the 500s it explains, and the requests
//! nginx refused itself (`limit_req`, `limit_conn`) reported apart from the failures; on the
//! captures of testdata/real and on generated logs with an outage among the refusals.

use crate::common::*;
use crate::real_logs::{scenarios, Scenario};
use serde_json::Value;
use std::fmt::Write;

fn scenario(name: &str) -> &'static Scenario {
    scenarios().iter().find(|s| s.name == name).unwrap_or_else(|| panic!("testdata/real/{name} missing"))
}

/// The failing requests of a scenario that carry a cause label, with the label.
fn labelled(s: &Scenario) -> Vec<(Row, &Row)> {
    read_csv(&s.run.out.join("requests.csv"))
        .into_iter()
        .filter_map(|r| {
            let l = s.labels.get(rid(&r["uri"])?)?;
            (l["cause"] != "-").then_some((r, l))
        })
        .collect()
}

#[test]
fn a_failed_fpm_start_is_named_in_the_verdicts_of_the_requests_it_failed() {
    for (name, reason, event) in [
        ("fpm_bad_user", "cannot get uid for user 'upcause-nosuchuser'", "config_error"),
        ("fpm_port_taken", "unable to bind listening socket for address '127.0.0.1:", "bind_failure"),
    ] {
        let s = scenario(name);
        let rows = labelled(s);
        assert!(rows.len() >= 40, "{name}: {} labelled failures", rows.len());
        for (r, l) in &rows {
            assert_eq!((l["cause"].as_str(), r["cause"].as_str()), ("fpm_start_failure", "fpm_start_failure"), "{r:?}");
            assert_eq!(r["confidence"], "high", "{r:?}");
            // The chain: what nginx saw, that FPM was down, when and why it failed to start,
            // and the FPM log line that says so.
            let d = &r["detail"];
            assert!(d.contains(": FPM was down, it failed to start at 2026-12-05T09:34:"), "{name}: {d}");
            assert!(d.contains(reason), "{name}: {d}");
            assert!(d.contains(&format!("/{name}/php-fpm.log:")), "{name}: {d}");
            assert!(r["evidence"].contains("php-fpm.log:"), "{name}: {}", r["evidence"]);
        }
        // The report says it too.
        let html = std::fs::read_to_string(s.run.out.join("report.html")).unwrap();
        assert!(html.contains("fpm_start_failure"), "{name}");
        // FPM's reason and its `FPM initialization failed` are FPM events of their own kinds.
        let fpm = read_csv(&s.run.out.join("fpm.csv"));
        let kind = |m: &str| fpm.iter().find(|r| r["message"].contains(m)).map(|r| r["event"].clone());
        assert_eq!(kind(reason).as_deref(), Some(event), "{name}");
        assert_eq!(kind("FPM initialization failed").as_deref(), Some("start_failure"), "{name}");
    }
    // A unix socket that refuses: the file is there, nothing listens (FPM was SIGKILLed).
    for (r, _) in labelled(scenario("fpm_killed_unix")) {
        assert!(r["detail"].contains("a stale socket: the file exists but nothing listens on it"), "{}", r["detail"]);
    }
    // Nothing listened: refused (TCP, the squatter gone) or missing socket (unix) named first.
    let first = |name: &str| labelled(scenario(name)).into_iter().map(|(r, _)| r["detail"].clone()).next().unwrap();
    assert!(first("fpm_bad_user").starts_with("the socket was missing: "), "{}", first("fpm_bad_user"));
}

#[test]
fn php_s_own_error_log_explains_the_500s_nginx_never_saw() {
    let s = scenario("php_error_log");
    let sum = read_json(&s.run.out.join("summary.json"));
    let kinds: Vec<&str> = sum["inputs"].as_array().unwrap().iter().filter_map(|f| f["kind"].as_str()).collect();
    assert!(kinds.contains(&"php_error"), "{kinds:?}");
    let rows = labelled(s);
    assert!(rows.len() >= 9, "{}", rows.len());
    let mut seen = std::collections::BTreeSet::new();
    for (r, l) in &rows {
        assert_eq!((r["cause"].as_str(), r["cause_class"].as_str()), (l["cause"].as_str(), l["cause_class"].as_str()));
        assert_eq!(r["confidence"], "high", "{r:?}");
        assert!(r["evidence"].contains("php-error.log:"), "{}", r["evidence"]);
        let script = r["uri"].split('?').next().unwrap().to_string();
        assert!(r["detail"].contains(&format!("this request's script {script}")), "{}", r["detail"]);
        seen.insert(r["cause"].clone());
    }
    assert!(seen.contains("php_memory_limit") && seen.contains("php_fatal"), "{seen:?}");
}

#[test]
fn requests_nginx_refused_itself_are_counted_apart_and_start_no_incident() {
    let s = scenario("nginx_limit_req");
    let sum = read_json(&s.run.out.join("summary.json"));
    let req = &sum["requests"];
    assert_eq!((req["failed"].as_u64(), req["refused"].as_u64()), (Some(0), Some(34)), "{req}");
    assert_eq!(sum["incidents"].as_array().unwrap().len(), 0);
    let by_cause = read_csv(&s.run.out.join("by_cause.csv"));
    let get = |cause: &str| by_cause.iter().find(|r| r["scope"] == "all" && r["cause"] == cause).cloned().unwrap();
    assert_eq!((get("rate_limited")["refused"].as_str(), get("rate_limited")["cause_class"].as_str()), ("26", "RL"));
    assert_eq!((get("conn_limited")["refused"].as_str(), get("conn_limited")["failed"].as_str()), ("8", "0"));
    let by_client = read_csv(&s.run.out.join("by_client.csv"));
    let c = by_client.iter().find(|r| r["client"] == "127.0.0.66").unwrap();
    assert_eq!((c["refused"].as_str(), c["top_cause"].as_str()), ("26", "rate_limited"));
    for (r, _) in labelled(s) {
        assert_eq!((r["outcome"].as_str(), r["confidence"].as_str(), r["incident"].as_str()), ("refused", "high", ""));
        let zone = if r["cause"] == "rate_limited" { "limit_req zone \"login\"" } else { "limit_conn zone \"addr\"" };
        assert!(r["detail"].contains(zone), "{}", r["detail"]);
    }
    // The terminal summary says so (not among the failing requests).
    let o = std::process::Command::new(bin())
        .args(["analyze", real().join("nginx_limit_req").to_str().unwrap(), "--out"])
        .arg(tmp("limit-req-terminal"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Failing requests: 0 "), "{text}");
    assert!(
        text.contains("Refused by nginx itself (limit_req/limit_conn; not upstream failures, in no incident): 34 (rate_limited 26, conn_limited 8)"),
        "{text}"
    );
}

const FMT: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" rt=$request_time ua=\"$upstream_addr\" us=\"$upstream_status\"";

/// An hour of traffic: a 60 s outage (connection refused) at 10:30, limit_req refusals of
/// one client every 20 s all hour (and a burst of them inside the outage), and a
/// maintenance `return 503` at 10:50 that nginx logs nothing for.
fn outage_among_refusals() -> std::path::PathBuf {
    let d = tmp("refusals-in");
    let (mut acc, mut err) = (String::new(), String::new());
    let stamp = |s: u32| {
        (
            format!("22/Nov/2026:{:02}:{:02}:{:02} +0100", 10 + s / 3600, s / 60 % 60, s % 60),
            format!("2026/11/22 {:02}:{:02}:{:02}", 10 + s / 3600, s / 60 % 60, s % 60),
        )
    };
    let mut conn = 0;
    for s in 0..3600u32 {
        let (a, e) = stamp(s);
        // Healthy traffic from many clients.
        let _ = writeln!(
            acc,
            "10.0.{}.{} - - [{a}] \"GET /ok HTTP/1.1\" 200 5 \"-\" \"ua\" rt=0.010 ua=\"127.0.0.1:9000\" us=\"200\"",
            s % 7,
            s % 200
        );
        let refuse = s % 20 == 0 || (1800..1860).contains(&s) && s % 2 == 1;
        if refuse {
            conn += 1;
            let _ = writeln!(
                acc,
                "10.9.9.9 - - [{a}] \"POST /login HTTP/1.1\" 503 190 \"-\" \"bot\" rt=0.000 ua=\"-\" us=\"-\""
            );
            let _ = writeln!(err, "{e} [error] 7#7: *{conn} limiting requests, excess: 5.120 by zone \"login\", client: 10.9.9.9, server: h.test, request: \"POST /login HTTP/1.1\", host: \"h.test\"");
        }
        if (1800..1860).contains(&s) && s % 2 == 0 {
            conn += 1;
            let _ = writeln!(acc, "10.1.1.{} - - [{a}] \"GET /cart HTTP/1.1\" 502 150 \"-\" \"ua\" rt=0.000 ua=\"127.0.0.1:9000\" us=\"502\"", s % 50);
            let _ = writeln!(err, "{e} [error] 7#7: *{conn} connect() failed (111: Connection refused) while connecting to upstream, client: 10.1.1.{}, server: h.test, request: \"GET /cart HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"h.test\"", s % 50);
        }
        if s == 3000 {
            let _ = writeln!(
                acc,
                "10.2.2.2 - - [{a}] \"GET /shop HTTP/1.1\" 503 190 \"-\" \"ua\" rt=0.000 ua=\"-\" us=\"-\""
            );
        }
        if s % 600 == 0 {
            let _ = writeln!(err, "{e} [notice] 7#7: signal process started");
        }
    }
    std::fs::write(d.join("access.log"), acc).unwrap();
    std::fs::write(d.join("error.log"), err).unwrap();
    d
}

#[test]
fn refusals_around_and_inside_an_outage_neither_start_nor_swell_it() {
    let d = outage_among_refusals();
    let out = tmp("refusals-out");
    let r = analyze(&[d.to_str().unwrap(), "--log-format", FMT], &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sum: Value = read_json(&out.join("summary.json"));
    // 180 refusals every 20 s plus 30 in the outage; 30 upstream failures; one `return 503`.
    assert_eq!(sum["requests"]["refused"].as_u64(), Some(210), "{}", sum["requests"]);
    assert_eq!(sum["requests"]["failed"].as_u64(), Some(31), "{}", sum["requests"]);
    let inc = sum["incidents"].as_array().unwrap();
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(inc[0]["failed"].as_u64(), Some(30), "{}", inc[0]);
    assert_eq!(inc[0]["start"].as_str(), Some("2026-11-22T10:30:00+01:00"));
    assert_eq!(inc[0]["end"].as_str(), Some("2026-11-22T10:30:58+01:00"));
    let causes: Vec<&str> = inc[0]["causes"].as_array().unwrap().iter().filter_map(|c| c["cause"].as_str()).collect();
    assert!(!causes.contains(&"rate_limited"), "{causes:?}");
    // The I1 scope of the frequency tables holds no refusal either.
    for row in read_csv(&out.join("by_cause.csv")) {
        assert!(row["scope"] == "all" || row["refused"] == "0", "{row:?}");
    }
    // The maintenance page: no upstream attempt and no limit line, so unexplained, saying why.
    let req = read_csv(&out.join("requests.csv"));
    let m = req.iter().find(|x| x["uri"] == "/shop").unwrap();
    assert_eq!((m["cause"].as_str(), m["outcome"].as_str()), ("unexplained", "failed"));
    assert!(m["detail"].starts_with("no upstream attempt: nginx answered 503 itself"), "{}", m["detail"]);
}
