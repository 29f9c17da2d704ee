//! Access-log parser with compiled `log_format`s: the default `combined`, a format carrying
//! every `$upstream_*` list, and (when the input's first line compiles as a format) a format
//! taken from the input itself. Every field accessor runs on every line that parses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use upcause::parse::access::{self, AccessFormat, AccessLine, Var};

const UPSTREAM: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" host=$host rt=$request_time uct="$upstream_connect_time" uht="$upstream_header_time" urt="$upstream_response_time" ua="$upstream_addr" us="$upstream_status""#;

fn formats() -> &'static [AccessFormat] {
    static F: OnceLock<Vec<AccessFormat>> = OnceLock::new();
    F.get_or_init(|| {
        vec![
            AccessFormat::compile("combined", upcause::parse::access::COMBINED).unwrap(),
            AccessFormat::compile("upstream", UPSTREAM).unwrap(),
        ]
    })
}

fn exercise(l: &AccessLine) {
    let _ = l.status();
    let _ = l.host();
    let _ = l.request_parts();
    for v in [Var::UpstreamStatus, Var::UpstreamAddr, Var::UpstreamResponseTime, Var::UpstreamConnectTime, Var::UpstreamHeaderTime] {
        if let Some(b) = l.get(v) {
            let _ = access::list_items(b).count();
            let _ = access::list_time_total(b);
            let _ = access::list_statuses(b);
            let _ = access::any_attempt_failed(b);
        }
    }
    if let Some(b) = l.get(Var::RequestTime) {
        let _ = access::parse_secs_ms(b);
    }
    if let Some(b) = l.get(Var::TimeLocal) {
        let _ = upcause::model::time::parse_time_local(b);
    }
}

fuzz_target!(|data: &[u8]| {
    for f in formats() {
        for line in data.split(|&c| c == b'\n') {
            if let Some(l) = f.parse(line) {
                exercise(&l);
            }
        }
    }
    // A format from the input: first line is the format, the rest are lines.
    let (head, rest) = match memchr_nl(data) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(src) = std::str::from_utf8(head) {
        if let Ok(f) = AccessFormat::compile_fields("fuzz", src) {
            for line in rest.split(|&c| c == b'\n') {
                if let Some(l) = f.parse(line) {
                    exercise(&l);
                }
            }
        }
    }
});

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}
