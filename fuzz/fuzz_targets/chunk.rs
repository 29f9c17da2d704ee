//! The whole read path on one file: discovery, kind detection, mmap, chunk planning at
//! record boundaries, parallel scan, accounting. The input is written as a rotated log
//! (mapped and chunked), the first byte choosing the name (access, error, FPM, slow log, a
//! container's or syslog's mixed stream, or a gzip copy; the kind comes from the content, the
//! name only breaks ties). Read with 4 KiB chunks on 2 threads and as one chunk on 1 thread, the
//! accounting must reconcile and the two reads must agree line for line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use upcause::cli::AnalyzeArgs;
use upcause::config::Config;

fn read(dir: &std::path::Path, chunk: usize, jobs: usize) -> Option<String> {
    let args = AnalyzeArgs { paths: vec![dir.display().to_string()], quiet: true, jobs: Some(jobs), chunk_bytes: Some(chunk), ..Default::default() };
    let mut cfg = Config::from_args(&args).ok()?;
    // No readable log (the input is not a known kind) is an error, not a crash.
    let a = upcause::analyze(&mut cfg, false).ok()?;
    let mut s = String::new();
    for st in &a.scan.stats {
        assert!(st.reconciles(), "{st:?}");
        s += &format!("{} {} {} {}\n", st.lines, st.parsed, st.malformed, st.skipped);
    }
    for r in &a.scan.requests {
        s += &format!("{} {} {}\n", r.ts, r.line, r.status);
    }
    for e in &a.scan.error_rows() {
        s += &format!("{} {} {} {:?}\n", e.ts, e.line, e.message(), e.origin);
    }
    for f in &a.scan.fpm_rows() {
        s += &format!("{} {} {} {:?}\n", f.ts, f.line, f.ts_exact, f.origin);
    }
    Some(s)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let names =
        ["access.log.1", "error.log.1", "php-fpm.log.1", "www-slow.log.1", "access.log.2.gz", "syslog.1", "0.log.1"];
    let name = names[data[0] as usize % names.len()];
    let body = &data[1..];
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    if name.ends_with(".gz") {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(body).unwrap();
        std::fs::write(&p, e.finish().unwrap()).unwrap();
    } else {
        std::fs::write(&p, body).unwrap();
    }
    let small = read(dir.path(), 4096, 2);
    let whole = read(dir.path(), 64 << 20, 1);
    assert_eq!(small, whole, "chunked and whole reads differ");
});
