//! Same input, same bytes: whatever the thread count and chunk size, and whether a log is
//! read plain or compressed (gzip, zstd, xz, bzip2).

use crate::common::*;
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every output file, with `generated_at` (the one documented run-dependent field) removed.
pub(crate) fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let mut bytes = std::fs::read(&p).unwrap();
            if name == "summary.json" {
                let text = String::from_utf8(bytes).unwrap();
                bytes = text
                    .lines()
                    .filter(|l| !l.contains("\"generated_at\""))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes();
            }
            (name, bytes)
        })
        .collect();
    v.sort();
    v
}

fn conf() -> String {
    real().join("mixed/nginx.conf").to_string_lossy().into_owned()
}

#[test]
fn identical_reports_with_one_or_two_threads_and_any_chunk_size() {
    let input = real().to_string_lossy().into_owned();
    let c = conf();
    let a = tmp("det-j1");
    let b = tmp("det-j2");
    let r1 = analyze(&[&input, "--nginx-conf", &c, "--jobs", "1", "--host", "h"], &a);
    // Small chunks: plain files are split into many chunks scanned in parallel.
    let r2 = analyze(&[&input, "--nginx-conf", &c, "--jobs", "2", "--chunk-bytes", "4096", "--host", "h"], &b);
    assert_eq!(r1.code, r2.code, "{} / {}", r1.stderr, r2.stderr);
    let (oa, ob) = (outputs(&a), outputs(&b));
    assert!(oa.len() >= 6, "{:?}", oa.iter().map(|x| &x.0).collect::<Vec<_>>());
    for ((na, ba), (nb, bb)) in oa.iter().zip(&ob) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs between --jobs 1 and --jobs 2 --chunk-bytes 4096");
    }
    assert_eq!(oa.len(), ob.len());
    // The run found events in many files (the comparison is not between two empty reports).
    let req = read_csv(&a.join("requests.csv"));
    assert!(req.len() > 900, "{} requests", req.len());
}

/// The allocator's options (`alloc`): a process started without them replaces itself with a
/// tuned one, an option the user set is kept, and neither changes a byte of the reports.
#[test]
fn the_allocator_is_tuned_once_keeps_the_user_s_options_and_changes_no_output() {
    let input = real().join("mixed").to_string_lossy().into_owned();
    let c = conf();
    let run = |name: &str, env: &[(&str, &str)]| {
        let out = tmp(name);
        let mem = out.join("memstats.txt");
        let mut cmd = Command::new(bin());
        cmd.args(["analyze", &input, "--nginx-conf", &c, "--host", "h", "-q", "--out"])
            .arg(out.join("r"))
            .env("UPCAUSE_MEMSTATS", &mem)
            .env_remove("MIMALLOC_ARENA_EAGER_COMMIT")
            .env_remove("MIMALLOC_PURGE_DELAY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.code().is_some_and(|c| c <= 2), "{}", String::from_utf8_lossy(&o.stderr));
        let line = std::fs::read_to_string(&mem).unwrap();
        (outputs(&out.join("r")), line)
    };
    let (tuned, line) = run("alloc-default", &[]);
    assert!(line.contains("allocator options MIMALLOC_ARENA_EAGER_COMMIT=0 MIMALLOC_PURGE_DELAY=2"), "{line}");
    let (user, line) = run("alloc-user", &[("MIMALLOC_PURGE_DELAY", "50")]);
    assert!(line.contains("allocator options MIMALLOC_ARENA_EAGER_COMMIT=0 MIMALLOC_PURGE_DELAY=50"), "{line}");
    let (both, line) = run("alloc-both", &[("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ARENA_EAGER_COMMIT", "1")]);
    assert!(line.contains("allocator options MIMALLOC_ARENA_EAGER_COMMIT=1 MIMALLOC_PURGE_DELAY=0"), "{line}");
    // Not two empty reports.
    let requests = root().join("target/test-out/alloc-default/r/requests.csv");
    assert!(tuned.len() >= 6 && read_csv(&requests).len() > 10);
    assert!(tuned == user && tuned == both, "the allocator's options changed a report");
}

/// A codec's name, its file suffix and a compressor.
type Codec = (&'static str, &'static str, fn(&[u8]) -> Vec<u8>);

/// The codecs upcause reads.
fn codecs() -> Vec<Codec> {
    vec![
        ("gzip", "gz", |d| {
            let mut e = GzEncoder::new(Vec::new(), Compression::default());
            e.write_all(d).unwrap();
            e.finish().unwrap()
        }),
        ("zstd", "zst", |d| zstd::stream::encode_all(d, 3).unwrap()),
        ("xz", "xz", |d| {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(d).unwrap();
            e.finish().unwrap()
        }),
        ("bzip2", "bz2", |d| {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            e.write_all(d).unwrap();
            e.finish().unwrap()
        }),
    ]
}

/// Replace the file column's names so a log and its compressed copy compare equal.
fn normalise(rows: Vec<Row>, sfx: &str) -> Vec<Vec<(String, String)>> {
    rows.into_iter()
        .map(|r| {
            let mut v: Vec<(String, String)> = r
                .into_iter()
                .map(|(k, v)| (k, v.replace(&format!(".{sfx}"), "").replace(&format!("/{sfx}/"), "/plain/")))
                .collect();
            v.sort();
            v
        })
        .collect()
}

#[test]
fn a_log_and_its_compressed_copies_give_identical_results() {
    for scenario in ["worker_segfault", "php_fatal", "max_children_unix", "timeouts_misaligned"] {
        let src = real().join(scenario);
        let base = tmp(&format!("codecs-{scenario}"));
        let plain = base.join("plain");
        std::fs::create_dir_all(&plain).unwrap();
        let c = src.join("nginx.conf").to_string_lossy().into_owned();
        let logs: Vec<PathBuf> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".log"))
            .collect();
        for p in &logs {
            std::fs::copy(p, plain.join(p.file_name().unwrap())).unwrap();
        }
        let o1 = base.join("out-plain");
        let r1 = analyze(&[plain.to_str().unwrap(), "--nginx-conf", &c], &o1);
        assert_eq!(r1.code, 0, "{scenario}: {}", r1.stderr);
        for (codec, sfx, compress) in codecs() {
            let dir = base.join(sfx);
            std::fs::create_dir_all(&dir).unwrap();
            for p in &logs {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                std::fs::write(dir.join(format!("{name}.{sfx}")), compress(&std::fs::read(p).unwrap())).unwrap();
            }
            let o2 = base.join(format!("out-{sfx}"));
            let r2 = analyze(&[dir.to_str().unwrap(), "--nginx-conf", &c], &o2);
            assert_eq!(r2.code, 0, "{scenario} {codec}: {}", r2.stderr);
            for f in ["requests.csv", "errors.csv", "fpm.csv", "incidents.csv", "causes.csv"] {
                let (a, b) = (read_csv(&o1.join(f)), read_csv(&o2.join(f)));
                if f == "requests.csv" || f == "errors.csv" {
                    assert!(!a.is_empty(), "{scenario}/{f} is empty");
                }
                assert_eq!(normalise(a, sfx), normalise(b, sfx), "{scenario}/{f}: plain and {codec} differ");
            }
            let (s1, s2) = (read_json(&o1.join("summary.json")), read_json(&o2.join("summary.json")));
            for (x, y) in s1["inputs"].as_array().unwrap().iter().zip(s2["inputs"].as_array().unwrap()) {
                assert_eq!(y["compression"], codec);
                for k in ["bytes", "lines", "parsed", "malformed", "skipped"] {
                    assert_eq!(x[k], y[k], "{scenario} {codec}: {k} of {}", x["path"]);
                }
            }
        }
    }
}
