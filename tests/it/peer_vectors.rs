//! Yardstick: the nginx lines other projects' parser tests assert (../shared/peer-vectors,
//! read in place, not copied), against upcause's parsers. Disputed fields (peer quirks that
//! contradict nginx) are not scored. Prints every disagreement.

use serde_json::Value;
use std::path::PathBuf;
use upcause::model::time::{parse_iso8601, parse_nginx_error_wall, parse_time_local};
use upcause::parse::access::{self, AccessFormat, Var, COMBINED};
use upcause::parse::nginx_error;

fn vectors() -> Option<Vec<Value>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/peer-vectors/vectors.jsonl");
    let text = std::fs::read_to_string(&p).ok()?;
    Some(text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect())
}

fn s(b: Option<&[u8]>) -> Value {
    b.map(|b| Value::String(String::from_utf8_lossy(b).into_owned())).unwrap_or(Value::Null)
}

fn wall_iso(stamp: &[u8]) -> Value {
    let w = parse_nginx_error_wall(stamp).unwrap();
    let (y, m, d) = upcause::model::time::civil_from_days(w.div_euclid(86_400));
    let sod = w.rem_euclid(86_400);
    Value::String(format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60))
}

/// Peer messages: drop a leading `pid#tid: *cid ` and nginx's trailing context.
fn fair_message(m: &str) -> String {
    let mut m = m;
    if let Some(i) = m.find(": ") {
        let head = &m[..i];
        if head.contains('#') && head.bytes().all(|c| c.is_ascii_digit() || c == b'#') {
            m = &m[i + 2..];
        }
    }
    if let Some(rest) = m.strip_prefix('*') {
        if let Some(i) = rest.find(' ') {
            if rest[..i].bytes().all(|c| c.is_ascii_digit()) {
                m = &rest[i + 1..];
            }
        }
    }
    match m.find(", client: ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

fn list(b: Option<&[u8]>, f: impl Fn(&[u8]) -> Value) -> Value {
    match b {
        None => Value::Array(vec![]),
        Some(b) if b == b"-" => Value::Array(vec![]),
        Some(b) => Value::Array(access::list_items(b).map(|i| if i == b"-" { Value::Null } else { f(i) }).collect()),
    }
}

fn num(b: &[u8]) -> Value {
    let t = String::from_utf8_lossy(b);
    t.parse::<i64>().map(Value::from).or_else(|_| t.parse::<f64>().map(Value::from)).unwrap_or(Value::String(t.into()))
}

fn same(field: &str, want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(field, x, y)),
        (Value::String(a), Value::String(b)) if field == "time" && a.len() > 19 => {
            let p = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis());
            p(a).is_some() && p(a) == p(b)
        }
        _ => want == got,
    }
}

fn error_fields(line: &str) -> Option<Vec<(&'static str, Value)>> {
    let l = nginx_error::parse(line.as_bytes())?;
    let req = l.request.map(|r| String::from_utf8_lossy(r).into_owned());
    let parts: Vec<String> = req.as_deref().map(|r| r.split(' ').map(String::from).collect()).unwrap_or_default();
    Some(vec![
        ("time", wall_iso(l.stamp)),
        ("level", l.level.map(|x| Value::String(x.as_str().into())).unwrap_or(Value::Null)),
        ("pid", l.pid.into()),
        ("tid", l.tid.into()),
        ("conn", l.conn.map(Value::from).unwrap_or(Value::Null)),
        ("message", Value::String(String::from_utf8_lossy(l.message).into_owned())),
        ("client", s(l.client)),
        ("server", s(l.server)),
        ("request", s(l.request)),
        ("upstream", s(l.upstream)),
        ("host", s(l.host)),
        ("referrer", s(l.referrer)),
        ("method", parts.first().cloned().map(Value::String).unwrap_or(Value::Null)),
        ("uri", parts.get(1).cloned().map(Value::String).unwrap_or(Value::Null)),
    ])
}

fn access_fields(fmt: &AccessFormat, line: &str) -> Option<Vec<(&'static str, Value)>> {
    let l = fmt.parse(line.as_bytes())?;
    let time = l
        .raw(Var::TimeLocal)
        .and_then(parse_time_local)
        .or_else(|| l.raw(Var::TimeIso8601).and_then(parse_iso8601))
        .map(|(secs, off)| {
            let z = upcause::model::Zone::Fixed(off);
            Value::String(upcause::model::time::format_rfc3339(secs * 1000, &z).replace('Z', "+00:00"))
        })
        .or_else(|| {
            let ms = l.raw(Var::Msec).and_then(upcause::model::time::parse_msec)?;
            let t = upcause::model::time::format_rfc3339(ms, &upcause::model::Zone::Fixed(3600));
            // Compare as an instant: re-read it with its offset.
            Some(Value::String(t))
        })
        .unwrap_or(Value::Null);
    let (m, u) = l.request_parts();
    Some(vec![
        ("time", time),
        ("client", s(l.raw(Var::RemoteAddr))),
        ("status", l.status().map(Value::from).unwrap_or(Value::Null)),
        ("method", s(m)),
        ("uri", s(u)),
        ("request", s(l.raw(Var::Request))),
        ("referrer", s(l.raw(Var::HttpReferer))),
        ("host", s(l.host())),
        ("request_time", l.get(Var::RequestTime).map(num).unwrap_or(Value::Null)),
        ("upstream_addr", list(l.get(Var::UpstreamAddr), |b| Value::String(String::from_utf8_lossy(b).into()))),
        ("upstream_status", list(l.get(Var::UpstreamStatus), num)),
        ("upstream_response_time", list(l.get(Var::UpstreamResponseTime), num)),
    ])
}

#[test]
fn parsers_agree_with_peer_vectors() {
    let Some(vs) = vectors() else {
        assert!(
            std::env::var_os("UPCAUSE_REQUIRE_PEER_VECTORS").is_none(),
            "../shared/peer-vectors/vectors.jsonl is required but missing"
        );
        eprintln!("NOTE: ../shared/peer-vectors not present; peer-vector yardstick not run");
        return;
    };
    let combined = AccessFormat::compile("combined", COMBINED).unwrap();
    let (mut scored, mut agreed, mut unparsed) = (0, 0, Vec::new());
    let mut diffs = Vec::new();
    for v in &vs {
        let line = v["line"].as_str().unwrap();
        let fields = match v["kind"].as_str().unwrap() {
            "nginx_error" => error_fields(line),
            _ => match v["log_format"].as_str() {
                None => access_fields(&combined, line),
                Some(f) => AccessFormat::compile_fields("peer", f).ok().and_then(|f| access_fields(&f, line)),
            },
        };
        let Some(fields) = fields else {
            unparsed.push(format!("{}: {line}", v["source"]));
            continue;
        };
        let disputed = v.get("disputed").and_then(Value::as_object);
        for (k, want) in v["expect"].as_object().unwrap() {
            if disputed.is_some_and(|d| d.contains_key(k)) {
                continue;
            }
            let Some((_, got)) = fields.iter().find(|(n, _)| n == k) else { continue };
            let want =
                if k == "message" { Value::String(fair_message(want.as_str().unwrap_or(""))) } else { want.clone() };
            scored += 1;
            if same(k, &want, got) {
                agreed += 1;
            } else {
                diffs.push(format!("{} [{k}] want {want} got {got}\n    {line}", v["source"]));
            }
        }
    }
    println!("peer vectors: {} lines, {} unparsed; fields {agreed}/{scored} agree", vs.len(), unparsed.len());
    for u in &unparsed {
        println!("  unparsed: {u}");
    }
    for d in &diffs {
        println!("  differs: {d}");
    }
    assert!(vs.len() >= 250);
    assert!(unparsed.is_empty(), "{} vector lines do not parse", unparsed.len());
    assert!(agreed as f64 >= 0.99 * scored as f64, "only {agreed}/{scored} fields agree");
}
