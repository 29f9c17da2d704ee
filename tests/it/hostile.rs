//! Hostile input (issue 7): truncated and corrupt gzip, copytruncate holes, odd line ends,
//! huge and binary lines, unreadable files, loops, duplicates, clock trouble, files that
//! change while read. No panic, nothing lost, accounting reconciles.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

pub(crate) fn hostile(case: &str) -> std::path::PathBuf {
    root().join("testdata/hostile").join(case)
}

/// Exit code must be 0 or 2 (never a panic, a signal or an internal error), and every
/// file's accounting must reconcile, with totals equal to the sum.
pub(crate) fn check_accounting(sum: &Value) {
    let mut tot = [0u64; 4];
    for f in sum["inputs"].as_array().unwrap() {
        let n = |k: &str| f[k].as_u64().unwrap();
        assert_eq!(n("lines"), n("parsed") + n("malformed") + n("skipped"), "{}", f["path"]);
        for (i, k) in ["lines", "parsed", "malformed", "skipped"].iter().enumerate() {
            tot[i] += n(k);
        }
        // Every malformed line is counted and the first five are kept as samples.
        assert_eq!(f["malformed_samples"].as_array().unwrap().len() as u64, n("malformed").min(5), "{}", f["path"]);
    }
    for (i, k) in ["lines", "parsed", "malformed", "skipped"].iter().enumerate() {
        assert_eq!(sum["totals"][k].as_u64().unwrap(), tot[i], "totals.{k}");
    }
}

pub(crate) fn run_case(name: &str, args: &[&str]) -> (Run, Value) {
    let out = tmp(&format!("hostile-{name}"));
    let r = analyze(args, &out);
    assert!(r.code == 0 || r.code == 2, "{name}: exit {} {}", r.code, r.stderr);
    let sum = read_json(&out.join("summary.json"));
    check_accounting(&sum);
    (r, sum)
}

/// `analyze DIR -j 2 --chunk-bytes CHUNK`: the exit code must be `code`; accounting checked.
fn read_chunked(dir: &Path, chunk: &str, code: i32) -> Value {
    let name = dir.file_name().unwrap().to_string_lossy();
    let out = tmp(&format!("{name}-out-{chunk}"));
    let r = analyze(&[dir.to_str().unwrap(), "-j", "2", "--chunk-bytes", chunk], &out);
    assert_eq!(r.code, code, "chunk {chunk}: {}", r.stderr);
    let sum = read_json(&out.join("summary.json"));
    check_accounting(&sum);
    sum
}

pub(crate) fn input<'a>(sum: &'a Value, suffix: &str) -> &'a Value {
    sum["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no input {suffix}"))
}

pub(crate) fn diags(sum: &Value) -> Vec<String> {
    sum["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{} {} {}", d["file"], d["offset"], d["message"]))
        .collect()
}

#[test]
fn gzip_truncated_corrupt_misnamed_and_empty() {
    let d = hostile("gzip");
    let (r, sum) = run_case("gzip", &[d.to_str().unwrap()]);
    assert_eq!(r.code, 2, "problems must give exit code 2");
    let dg = diags(&sum);
    let truncated = input(&sum, "truncated.access.log.2.gz");
    assert!(truncated["lines"].as_u64().unwrap() > 1000, "the decoded prefix is kept");
    assert!(dg.iter().any(|x| x.contains("truncated.access.log.2.gz") && x.contains("truncated at byte")), "{dg:?}");
    let corrupt = input(&sum, "corrupt-middle.access.log.3.gz");
    assert!(dg.iter().any(|x| x.contains("corrupt-middle") && x.contains("corrupt gzip member")), "{dg:?}");
    // Members 1 and 3 decode (1,500 lines each); the corrupt one is skipped from the error on.
    let n = corrupt["parsed"].as_u64().unwrap();
    assert!((3000..4500).contains(&n), "{n}");
    let plain = input(&sum, "plain-named.access.log.4.gz");
    assert_eq!((plain["compression"].as_str(), plain["parsed"].as_u64()), (Some("plain"), Some(100)));
    assert!(dg.iter().any(|x| x.contains("plain-named") && x.contains("plain text under a .gz name")));
    let gzn = input(&sum, "gzip-named.access.log.5");
    assert_eq!((gzn["compression"].as_str(), gzn["parsed"].as_u64()), (Some("gzip"), Some(100)));
    for e in ["empty.access.log", "empty.error.log.1.gz"] {
        assert_eq!(input(&sum, e)["lines"].as_u64(), Some(0), "{e}");
    }
    // The requests decoded from the truncated file are analysed (every tenth is a 502).
    let req = read_csv(&r.out.join("requests.csv"));
    assert!(req.iter().filter(|x| x["file"].ends_with("truncated.access.log.2.gz")).count() > 100);
}

#[test]
fn nul_runs_crlf_missing_newline_invalid_utf8() {
    let (_, sum) = run_case("nul", &[hostile("nul").to_str().unwrap()]);
    let a = input(&sum, "nul/access.log");
    assert_eq!((a["parsed"].as_u64(), a["malformed"].as_u64()), (Some(50), Some(0)));
    assert_eq!(input(&sum, "nul/error.log")["parsed"].as_u64(), Some(10));

    let (r, sum) = run_case("lines", &[hostile("lines").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let crlf = input(&sum, "crlf.error.log");
    assert_eq!((crlf["parsed"].as_u64(), crlf["malformed"].as_u64()), (Some(20), Some(0)));
    let errs = read_csv(&r.out.join("errors.csv"));
    assert!(errs.iter().all(|e| !e["host"].contains('\r') && e["host"] == "h.test"));
    assert_eq!(input(&sum, "nofinal.access.log")["parsed"].as_u64(), Some(10));
    let req = read_csv(&r.out.join("requests.csv"));
    assert_eq!(
        req.iter().filter(|x| x["file"].ends_with("nofinal.access.log")).count(),
        10,
        "the last line without newline counts"
    );
    let bad = input(&sum, "badutf8.access.log");
    assert_eq!((bad["parsed"].as_u64(), bad["malformed"].as_u64()), (Some(6), Some(0)));
    assert!(req.iter().any(|x| x["uri"].contains('\u{FFFD}')), "invalid bytes shown as U+FFFD");
}

#[test]
fn a_line_of_several_megabytes_is_one_malformed_line() {
    let d = tmp("huge-in");
    let mut body = Vec::new();
    for i in 0..5 {
        body.extend(
            format!("10.0.0.{i} - - [22/Nov/2026:03:41:07 +0100] \"GET /a HTTP/1.1\" 200 1 \"-\" \"x\"\n").bytes(),
        );
    }
    body.extend(b"10.0.0.9 - - [22/Nov/2026:03:41:07 +0100] \"GET /");
    body.extend(std::iter::repeat_n(b'A', 6 << 20));
    body.extend(b"\n");
    for i in 0..5 {
        body.extend(
            format!("10.0.0.{i} - - [22/Nov/2026:03:41:08 +0100] \"GET /b HTTP/1.1\" 502 1 \"-\" \"x\"\n").bytes(),
        );
    }
    std::fs::write(d.join("access.log"), &body).unwrap();
    // Also as gzip, where the line crosses many 1 MiB decode blocks.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &body).unwrap();
    std::fs::write(d.join("access.log.1.gz"), e.finish().unwrap()).unwrap();
    let (r, sum) = run_case("huge", &[d.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    for f in ["access.log", "access.log.1.gz"] {
        let i = input(&sum, f);
        assert_eq!(
            (i["lines"].as_u64(), i["parsed"].as_u64(), i["malformed"].as_u64()),
            (Some(11), Some(10), Some(1)),
            "{f}"
        );
        let s = i["malformed_samples"][0]["text"].as_str().unwrap();
        assert_eq!(i["malformed_samples"][0]["line"].as_u64(), Some(6));
        assert!(s.len() <= 400, "sample capped, got {} bytes", s.len());
    }
}

#[test]
fn binary_files_are_skipped_and_the_rest_is_read() {
    let (r, sum) = run_case("binary", &[hostile("binary").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let skipped = sum["skipped_files"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["path"].as_str().unwrap().ends_with("blob.log") && s["reason"] == "binary content"),
        "{skipped:?}"
    );
    assert_eq!(input(&sum, "binary/access.log")["parsed"].as_u64(), Some(20));
}

fn as_nobody() -> Option<Command> {
    // Permissions do not stop root: run the binary as `nobody` when we are root.
    // SAFETY-free check of the effective uid via /proc.
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid: u32 = status.lines().find(|l| l.starts_with("Uid:"))?.split_whitespace().nth(1)?.parse().ok()?;
    if uid != 0 {
        return Some(Command::new(bin()));
    }
    let runuser = ["/usr/sbin/runuser", "/sbin/runuser"].into_iter().find(|p| Path::new(p).exists())?;
    let mut c = Command::new(runuser);
    c.args(["-u", "nobody", "--", bin()]);
    Some(c)
}

#[test]
fn unreadable_files_loops_and_duplicates() {
    // Under /tmp so `nobody` can write the output.
    let base = std::env::temp_dir().join(format!("upcause-perm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let d = base.join("logs");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    let line = |i: u32| format!("10.0.0.{i} - - [22/Nov/2026:03:41:07 +0100] \"GET /x HTTP/1.1\" 502 1 \"-\" \"x\"\n");
    std::fs::write(d.join("access.log"), (0..10).map(line).collect::<String>()).unwrap();
    std::fs::write(d.join("secret.access.log"), (0..10).map(line).collect::<String>()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.join("secret.access.log"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // A loop: sub/back -> .. ; the same log twice: a symlink and a copy.
    std::os::unix::fs::symlink("..", d.join("sub/back")).unwrap();
    std::os::unix::fs::symlink("../access.log", d.join("sub/again.access.log")).unwrap();
    std::fs::copy(d.join("access.log"), d.join("sub/copy.access.log")).unwrap();
    for p in [&base, &d, &d.join("sub")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::set_permissions(d.join("access.log"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(d.join("sub/copy.access.log"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = base.join("out");
    let Some(mut cmd) = as_nobody() else {
        eprintln!("NOTE: cannot drop root privileges (no runuser); permission case not run");
        return;
    };
    let o = cmd.args(["analyze", d.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]).output().unwrap();
    let code = o.status.code().unwrap_or(-1);
    assert_eq!(code, 2, "{}", String::from_utf8_lossy(&o.stderr));
    let sum = read_json(&out.join("summary.json"));
    check_accounting(&sum);
    let dg = diags(&sum);
    assert!(dg.iter().any(|x| x.contains("secret.access.log") && x.contains("Permission denied")), "{dg:?}");
    assert!(dg.iter().any(|x| x.contains("loop")), "{dg:?}");
    assert!(dg.iter().any(|x| x.contains("again.access.log") && x.contains("same file as")), "{dg:?}");
    assert!(dg.iter().any(|x| x.contains("copy.access.log") && x.contains("identical to")), "{dg:?}");
    // Counted once: ten requests, not thirty.
    assert_eq!(sum["requests"]["total"].as_u64(), Some(10));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn clock_trouble() {
    let (r, sum) = run_case("clock", &[hostile("clock").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let req = read_csv(&r.out.join("requests.csv"));
    assert_eq!(req.len(), 4 + 2 + 5);
    // Out of order, stepped back, across the new year, skewed by 2 s: every request finds its
    // nginx line (the join tolerates 2 s between sources).
    for x in &req {
        assert_eq!(x["cause"], "backend_down", "{x:?}");
        assert_ne!(x["proximate"], "none", "{x:?}");
    }
    let ny: Vec<&Row> = req.iter().filter(|x| x["file"].ends_with("newyear.access.log")).collect();
    assert_eq!(
        (ny[0]["time"].as_str(), ny[1]["time"].as_str()),
        ("2026-12-31T23:59:59+01:00", "2027-01-01T00:00:01+01:00")
    );
    assert!(sum["zone"]["chosen_by"] == "access-log offsets");
}

/// With `--tz Europe/Berlin`, and without it: the access log's two offsets (+02:00, then
/// +01:00 after 01:00 UTC) make the run infer a zone with central Europe's rules, and the
/// zone-less error lines come out the same.
#[test]
fn naive_stamps_across_a_daylight_saving_change() {
    let dir = hostile("dst");
    for (name, args) in
        [("dst", &[dir.to_str().unwrap(), "--tz", "Europe/Berlin"][..]), ("dst-inferred", &[dir.to_str().unwrap()][..])]
    {
        naive_stamps_case(name, args);
    }
}

fn naive_stamps_case(name: &str, args: &[&str]) {
    let (r, sum) = run_case(name, args);
    if name == "dst-inferred" {
        let z = &sum["zone"];
        assert_eq!(z["chosen_by"], "access-log offsets (zone inferred)", "{z}");
        assert!(z["zone"].as_str().unwrap().starts_with("Europe/"), "{z}");
    }
    let req = read_csv(&r.out.join("requests.csv"));
    assert_eq!(req.len(), 4);
    for x in &req {
        assert_ne!(x["proximate"], "none", "the repeated hour must keep its error lines: {x:?}");
    }
    let errs = read_csv(&r.out.join("errors.csv"));
    let times: Vec<&str> = errs.iter().map(|e| e["time"].as_str()).collect();
    assert_eq!(
        times,
        [
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:59:00+02:00",
            "2026-10-25T02:10:00+01:00",
            "2026-10-25T02:30:00+01:00"
        ]
    );
    assert!(diags(&sum).iter().any(|d| d.contains("repeated hour")), "{:?}", diags(&sum));
}

#[test]
fn a_file_that_grows_or_shrinks_while_read() {
    // A large live file (age 0): read with positional reads up to its size at open. Another
    // thread appends to it and then truncates it; the run must finish (no SIGBUS), report
    // what it read, and say so when the file shrank.
    let d = tmp("live-in");
    let p = d.join("access.log");
    let line = "10.0.0.1 - - [22/Nov/2026:03:41:07 +0100] \"GET /live HTTP/1.1\" 200 1 \"-\" \"x\"\n";
    let body = line.repeat(400_000);
    std::fs::write(&p, &body).unwrap();
    let out = tmp("live-out");
    let child = Command::new(bin())
        .args([
            "analyze",
            d.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
            "--chunk-bytes",
            "65536",
            "-j",
            "1",
        ])
        .spawn()
        .unwrap();
    let writer = {
        let p = p.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
            for _ in 0..50 {
                let _ = f.write_all(line.as_bytes());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            let _ = std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(1000);
        })
    };
    let status = child.wait_with_output().unwrap().status;
    writer.join().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(status.signal().is_none(), "killed by signal {:?}", status.signal());
    let code = status.code().unwrap();
    assert!(code == 0 || code == 2, "{code}");
    let sum = read_json(&out.join("summary.json"));
    check_accounting(&sum);
    let f = input(&sum, "access.log");
    let lines = f["lines"].as_u64().unwrap();
    assert!(lines <= 400_050, "{lines}");
    let n = diags(&sum).iter().filter(|x| x.contains("shrank")).count();
    // On a loaded machine the truncation can come before the run lists the file: then it
    // is a 1000-byte file read whole, and nothing shrank under the reader.
    if lines < 400_000 && f["size"].as_u64().unwrap() > 1000 {
        assert_eq!(n, 1, "a short read is reported once: {:?}", diags(&sum));
    } else {
        assert_eq!(n, 0, "nothing shrank under the reader: {:?}", diags(&sum));
    }
}

#[test]
fn every_fixture_directory_reconciles_and_never_panics() {
    // Each scenario directory on its own, then the whole of testdata/ at once (scripts,
    // READMEs and labels among the logs are listed as skipped files).
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    for group in ["real", "hostile"] {
        let mut sub: Vec<_> = std::fs::read_dir(root().join("testdata").join(group))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        sub.sort();
        dirs.extend(sub);
    }
    assert!(dirs.len() >= 38, "{}", dirs.len());
    dirs.push(root().join("testdata"));
    for (i, d) in dirs.iter().enumerate() {
        let out = tmp(&format!("fixture-{i}"));
        let r = analyze(&[d.to_str().unwrap()], &out);
        assert!(r.code == 0 || r.code == 2, "{}: exit {} {}", d.display(), r.code, r.stderr);
        let sum = read_json(&out.join("summary.json"));
        check_accounting(&sum);
        assert!(sum["totals"]["lines"].as_u64().unwrap() > 0, "{}", d.display());
    }
}

#[test]
fn a_stamped_line_that_is_no_slow_log_header_reads_the_same_in_any_chunking() {
    // Regression (found by the `chunk` fuzz target): the chunker cut slow logs at any stamped
    // line, the reader only at a valid block header, so a damaged header was malformed in one
    // read and part of the previous block in another.
    let d = tmp("slow-in");
    let block = |pid: u32| {
        format!(
            "[22-Nov-2026 04:14:55]  [pool api] pid {pid}\nscript_filename = /www/slow.php\n[0x00007f323e413120] usleep() /www/slow.php:5\n\n"
        )
    };
    let mut text: String = (0..60).map(block).collect();
    text += "[22-Nov-2026 04:14:56]  _pool api] pid 7\nscript_filename = /www/slow.php\n[0x00007f323e413120] usleep() /www/slow.php:5\n\n";
    text += &(60..120).map(block).collect::<String>();
    std::fs::write(d.join("www-slow.log.1"), &text).unwrap();
    let mut seen = Vec::new();
    for chunk in ["4096", "67108864"] {
        let sum = read_chunked(&d, chunk, 2);
        let f = input(&sum, "www-slow.log.1");
        seen.push((f["parsed"].as_u64(), f["malformed"].as_u64(), f["malformed_samples"].clone()));
    }
    assert_eq!(seen[0], seen[1]);
    // The damaged header alone is malformed; its body lines stay with no block, also malformed.
    assert_eq!(seen[0].1, Some(3));
    assert_eq!(seen[0].0, Some(120 * 3));
}

#[test]
fn a_multi_line_record_running_to_the_end_of_the_file_is_not_cut() {
    // Regression (found by the `chunk` fuzz target): when no record started between a chunk's
    // target end and the end of the file, the chunker cut at the next line end instead, in the
    // middle of the last slow-log block.
    let d = tmp("tail-in");
    let mut text = String::new();
    let mut pid = 0;
    while text.len() < 3900 {
        pid += 1;
        text += &format!("[22-Nov-2026 04:14:55]  [pool api] pid {pid}\nscript_filename = /www/slow.php\n[0x00007f32] usleep() /www/slow.php:5\n\n");
    }
    text += "[22-Nov-2026 04:14:56]  [pool api] pid 999\nscript_filename = /www/slow.php\n";
    while text.len() < 4400 {
        text += "[0x00007f32] f() /www/a.php:1\n";
    }
    text += "[0x1] g() b:2\n";
    std::fs::write(d.join("www-slow.log.1"), &text).unwrap();
    for chunk in ["4096", "67108864"] {
        let sum = read_chunked(&d, chunk, 0);
        assert_eq!(input(&sum, "www-slow.log.1")["malformed"].as_u64(), Some(0), "chunk {chunk}");
    }
}

#[test]
fn the_chunk_fuzz_targets_crashes_read_the_same_in_any_chunking() {
    // Every input that once broke the `chunk` fuzz target (fuzz/regressions/chunk), read as
    // the target reads it: the first byte picks the file name, 4 KiB chunks on 2 threads must
    // give what one chunk on 1 thread gives, and the accounting must reconcile. (The latest:
    // a slow-log block's closing blank line in a mixed stream was counted twice.)
    let names =
        ["access.log.1", "error.log.1", "php-fpm.log.1", "www-slow.log.1", "access.log.2.gz", "syslog.1", "0.log.1"];
    let mut n = 0;
    for e in std::fs::read_dir(root().join("fuzz/regressions/chunk")).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let Some((&first, body)) = data.split_first() else { continue };
        let name = names[first as usize % names.len()];
        let d = tmp(&format!("chunk-regression-{n}"));
        if name.ends_with(".gz") {
            let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut g, body).unwrap();
            std::fs::write(d.join(name), g.finish().unwrap()).unwrap();
        } else {
            std::fs::write(d.join(name), body).unwrap();
        }
        let out = |tag: &str, extra: &[&str]| {
            let o = tmp(&format!("chunk-regression-{n}-{tag}"));
            let r = analyze(&[&[d.to_str().unwrap()][..], extra].concat(), &o);
            if r.code == 1 {
                return None; // nothing readable: an error, not a crash
            }
            assert!(r.code == 0 || r.code == 2, "{}", r.stderr);
            let sum = read_json(&o.join("summary.json"));
            check_accounting(&sum);
            Some((
                sum["inputs"].clone(),
                std::fs::read_to_string(o.join("errors.csv")).unwrap(),
                std::fs::read_to_string(o.join("fpm.csv")).unwrap(),
                std::fs::read_to_string(o.join("requests.csv")).unwrap(),
            ))
        };
        assert_eq!(out("small", &["-j", "2", "--chunk-bytes", "4096"]), out("whole", &["-j", "1"]), "regression {n}");
        n += 1;
    }
    assert!(n >= 3);
}

/// One access log across the end of summer time whose first lines show only +02:00 (no
/// rotation between), and an error line after the change. Plain, or both in one syslog file,
/// its last line shows +01:00: the zone is inferred and the request finds its error line.
/// Compressed (its end is not read before the scan), the first scan reads it at +02:00, sees
/// +01:00 after the change, and the logs are read again in the zone both offsets at their
/// instants name; with no zone-less log beside it there is nothing to do.
#[test]
fn a_daylight_saving_change_inside_one_file_is_followed_or_pointed_out() {
    const ERR: &str = "2026/10/25 03:30:00 [error] 2713#2713: *5 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: _, request: \"GET /p.php?rid=d-16200 HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"localhost\"\n";
    let dir = tmp("dst-one-file");
    let mut access = String::new();
    let mut syslog = String::new();
    // 22:00 UTC on 2026-10-24 to 02:59:59 UTC on the 25th, a line a second (the syslog file's
    // lines before the change are more than the 1 MiB its sniffing reads); +02:00 until 01:00
    // UTC.
    for k in 0..5 * 3600u32 {
        // Seconds since 2026-10-24 00:00 UTC, then local.
        let utc = 22 * 3600 + k;
        let off = if utc < 25 * 3600 { 2 } else { 1 };
        let local = utc + off * 3600;
        let (day, hh, mm, ss) = (24 + local / 86_400, local % 86_400 / 3600, local % 3600 / 60, local % 60);
        // Request d-16200 at 02:30 UTC, 03:30 local (+01:00), fails.
        let status = if k == 16_200 { 502 } else { 200 };
        let line = format!(
            "10.0.0.1 - - [{day}/Oct/2026:{hh:02}:{mm:02}:{ss:02} +0{off}00] \"GET /p.php?rid=d-{k:05} HTTP/1.1\" {status} 12 \"-\" \"curl/8.5.0\"\n"
        );
        // The same lines through rsyslog (RFC 3164 files: the host's local time, no zone).
        syslog += &format!("Oct {day} {hh:02}:{mm:02}:{ss:02} web1 nginx: {line}");
        if k == 16_200 {
            syslog += &format!("Oct 25 03:30:00 web1 nginx: {ERR}");
        }
        access += &line;
    }
    std::fs::write(dir.join("access.log"), &access).unwrap();
    let (_, sum) = run_case("dst-one-file-access", &[dir.to_str().unwrap()]);
    assert!(!diags(&sum).iter().any(|d| d.contains("daylight-saving")), "{:?}", diags(&sum));
    std::fs::write(dir.join("error.log"), ERR).unwrap();
    let (r, sum) = run_case("dst-one-file", &[dir.to_str().unwrap()]);
    assert_eq!(sum["zone"]["chosen_by"], "access-log offsets (zone inferred)", "{}", sum["zone"]);
    assert!(!diags(&sum).iter().any(|d| d.contains("daylight-saving change inside")), "{:?}", diags(&sum));
    let req = read_csv(&r.out.join("requests.csv"));
    assert_eq!(req.len(), 1, "{req:?}");
    assert_ne!(req[0]["proximate"], "none", "the error line an hour off: {:?}", req[0]);
    // One syslog file holding both logs: its last access line is read too.
    let sdir = tmp("dst-one-syslog");
    std::fs::write(sdir.join("syslog"), &syslog).unwrap();
    let (r, sum) = run_case("dst-one-syslog-out", &[sdir.to_str().unwrap()]);
    assert_eq!(sum["zone"]["chosen_by"], "access-log offsets (zone inferred)", "{}", sum["zone"]);
    let req = read_csv(&r.out.join("requests.csv"));
    assert_eq!(req.len(), 1, "{req:?}");
    assert_ne!(req[0]["proximate"], "none", "the error line an hour off: {:?}", req[0]);
    // The same log compressed: its first lines only.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, access.as_bytes()).unwrap();
    std::fs::write(dir.join("access.log.1.gz"), gz.finish().unwrap()).unwrap();
    std::fs::remove_file(dir.join("access.log")).unwrap();
    let (r, sum) = run_case("dst-one-file-gz", &[dir.to_str().unwrap()]);
    assert_eq!(sum["zone"]["chosen_by"], "access-log offsets (zone inferred)", "{}", sum["zone"]);
    assert!(sum["zone"]["detail"].as_str().unwrap().contains("chosen after a first scan"), "{}", sum["zone"]);
    assert!(!diags(&sum).iter().any(|d| d.contains("daylight-saving change inside")), "{:?}", diags(&sum));
    let req = read_csv(&r.out.join("requests.csv"));
    assert_eq!(req.len(), 1, "{req:?}");
    assert_ne!(req[0]["proximate"], "none", "the error line an hour off: {:?}", req[0]);
}
