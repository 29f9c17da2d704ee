//! Same input, same bytes: whatever the thread count and chunk size, and whether a log is
//! read plain or gzip-compressed.

use crate::common::*;
use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::Path;

/// Every output file, with `generated_at` (the one documented run-dependent field) removed.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
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

fn gzip_file(src: &Path, dst: &Path) {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(&std::fs::read(src).unwrap()).unwrap();
    std::fs::write(dst, e.finish().unwrap()).unwrap();
}

/// Replace the file column's names so a log and its `.gz` copy compare equal.
fn normalise(rows: Vec<Row>) -> Vec<Vec<(String, String)>> {
    rows.into_iter()
        .map(|r| {
            let mut v: Vec<(String, String)> =
                r.into_iter().map(|(k, v)| (k, v.replace(".gz", "").replace("/gz/", "/plain/"))).collect();
            v.sort();
            v
        })
        .collect()
}

#[test]
fn a_log_and_its_gzip_copy_give_identical_results() {
    for scenario in ["worker_segfault", "php_fatal", "max_children_unix", "timeouts_misaligned"] {
        let src = real().join(scenario);
        let base = tmp(&format!("gz-{scenario}"));
        let (plain, gz) = (base.join("plain"), base.join("gz"));
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&gz).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !name.contains(".log") {
                continue;
            }
            std::fs::copy(&p, plain.join(&name)).unwrap();
            gzip_file(&p, &gz.join(format!("{name}.gz")));
        }
        let c = src.join("nginx.conf").to_string_lossy().into_owned();
        let (o1, o2) = (base.join("out-plain"), base.join("out-gz"));
        let r1 = analyze(&[plain.to_str().unwrap(), "--nginx-conf", &c], &o1);
        let r2 = analyze(&[gz.to_str().unwrap(), "--nginx-conf", &c], &o2);
        assert_eq!((r1.code, r2.code), (0, 0), "{scenario}: {} {}", r1.stderr, r2.stderr);
        for f in ["requests.csv", "errors.csv", "fpm.csv", "incidents.csv", "causes.csv"] {
            let (a, b) = (read_csv(&o1.join(f)), read_csv(&o2.join(f)));
            if f == "requests.csv" || f == "errors.csv" {
                assert!(!a.is_empty(), "{scenario}/{f} is empty");
            }
            assert_eq!(normalise(a), normalise(b), "{scenario}/{f}: plain and gzip differ");
        }
        let (s1, s2) = (read_json(&o1.join("summary.json")), read_json(&o2.join("summary.json")));
        for (x, y) in s1["inputs"].as_array().unwrap().iter().zip(s2["inputs"].as_array().unwrap()) {
            assert_eq!(y["compression"], "gzip");
            for k in ["bytes", "lines", "parsed", "malformed", "skipped"] {
                assert_eq!(x[k], y[k], "{scenario}: {k} of {}", x["path"]);
            }
        }
    }
}
