//! Criterion benches of the byte parsers and the classifier, on lines captured from real
//! nginx 1.22 and php-fpm 8.2 (`testdata/real`), repeated to about 8 MB per input so the
//! figures are per-byte throughput, not cache effects of a few lines. Criterion reports
//! MB/s (and lines/s in the `lines` group).
//!
//!   cargo bench --bench parsers

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;
use upcause::classify::Classifier;
use upcause::parse::access::{AccessFormat, COMBINED};
use upcause::parse::{fpm, nginx_error};

const TARGET: usize = 8 << 20;
const UPCAUSE_FMT: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" host=$host rt=$request_time uaddr="$upstream_addr" ustatus="$upstream_status" urt="$upstream_response_time" uct="$upstream_connect_time" uht="$upstream_header_time""#;

/// Every line of the files named `name` under testdata/real, repeated to ~TARGET bytes.
fn corpus(name: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/real");
    let mut one = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    for d in dirs {
        if let Ok(b) = std::fs::read(d.join(name)) {
            one.extend_from_slice(&b);
            if !one.ends_with(b"\n") {
                one.push(b'\n');
            }
        }
    }
    assert!(!one.is_empty(), "no {name} under testdata/real");
    let mut out = Vec::with_capacity(TARGET + one.len());
    while out.len() < TARGET {
        out.extend_from_slice(&one);
    }
    out
}

fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|&c| c == b'\n').filter(|l| !l.is_empty())
}

fn bench(c: &mut Criterion) {
    let combined = corpus("access-combined.log");
    let upstream = corpus("access.log");
    let errors = corpus("error.log");
    let fpm_log = corpus("php-fpm.log");
    let f_comb = AccessFormat::compile("combined", COMBINED).unwrap();
    let f_up = AccessFormat::compile("upcause", UPCAUSE_FMT).unwrap();
    let cls = Classifier::new().unwrap();

    let mut g = c.benchmark_group("bytes");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(combined.len() as u64));
    g.bench_function("access_combined", |b| {
        b.iter(|| {
            lines(&combined).filter_map(|l| f_comb.parse(l)).filter_map(|l| l.status()).map(u64::from).sum::<u64>()
        })
    });
    g.throughput(Throughput::Bytes(upstream.len() as u64));
    g.bench_function("access_upstream_lists", |b| {
        b.iter(|| {
            lines(&upstream)
                .filter_map(|l| f_up.parse(l))
                .map(|l| {
                    let st = l
                        .get(upcause::parse::access::Var::UpstreamStatus)
                        .map(upcause::parse::access::any_attempt_failed);
                    u64::from(l.status().unwrap_or(0)) + u64::from(st == Some(true))
                })
                .sum::<u64>()
        })
    });
    g.throughput(Throughput::Bytes(errors.len() as u64));
    g.bench_function("error_parse", |b| {
        b.iter(|| lines(&errors).filter_map(nginx_error::parse).map(|l| l.pid as u64).sum::<u64>())
    });
    g.bench_function("error_parse_classify", |b| {
        b.iter(|| lines(&errors).filter_map(nginx_error::parse).filter(|l| cls.classify(l).failure).count())
    });
    g.throughput(Throughput::Bytes(fpm_log.len() as u64));
    g.bench_function("fpm_parse_interpret", |b| {
        b.iter(|| {
            lines(&fpm_log)
                .filter_map(fpm::parse_line)
                .map(|l| fpm::interpret(l.body).child_pid.unwrap_or(0) as u64)
                .sum::<u64>()
        })
    });
    g.finish();

    // The same in lines/s for the two hottest paths.
    let mut g = c.benchmark_group("lines");
    g.sample_size(20);
    g.throughput(Throughput::Elements(lines(&upstream).count() as u64));
    g.bench_function("access_upstream_lists", |b| b.iter(|| lines(&upstream).filter_map(|l| f_up.parse(l)).count()));
    let parsed: Vec<_> = lines(&errors).filter_map(nginx_error::parse).collect();
    g.throughput(Throughput::Elements(parsed.len() as u64));
    g.bench_function("classify_only", |b| {
        b.iter(|| parsed.iter().filter(|l| black_box(cls.classify(l)).failure).count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
