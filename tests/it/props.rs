//! Property tests (issue 7): whatever the chunk size and thread count, and whether a log is
//! read plain or from gzip, every line is accounted once and the results are identical.

use proptest::prelude::*;
use std::io::Write;
use upcause::cli::AnalyzeArgs;
use upcause::config::Config;

/// A log line of one of the kinds upcause reads, or junk.
fn line() -> impl Strategy<Value = String> {
    let access = (0u8..250, 0u32..60, prop::sample::select(vec![200u16, 404, 499, 502, 504]), "[a-z]{0,12}").prop_map(
        |(ip, s, st, p)| {
            format!("10.0.0.{ip} - - [22/Nov/2026:03:41:{:02} +0100] \"GET /{p} HTTP/1.1\" {st} 5 \"-\" \"ua\"", s)
        },
    );
    let error = (0u32..60, 0u64..999, "[a-z]{0,12}").prop_map(|(s, c, p)| {
        format!(
            "2026/11/22 03:41:{s:02} [error] 7#7: *{c} connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.1, server: s, request: \"GET /{p} HTTP/1.1\", upstream: \"http://127.0.0.1:1/{p}\", host: \"s\""
        )
    });
    // A quiet row (`scan::quiet`: kept out of memory, read back in order).
    let probe = (0u32..60, 0u64..999, "[a-z]{0,12}").prop_map(|(s, c, p)| {
        format!(
            "2026/11/22 03:41:{s:02} [error] 7#7: *{c} open() \"/srv/www/{p}\" failed (2: No such file or directory), client: 10.0.0.2, server: s, request: \"GET /{p} HTTP/1.1\", host: \"s\""
        )
    });
    let junk = "[ -~]{0,80}";
    prop_oneof![6 => access, 2 => error, 2 => probe, 1 => junk.prop_map(String::from), 1 => Just(String::new())]
}

fn run(dir: &std::path::Path, chunk: usize, jobs: usize) -> (String, String) {
    let args = AnalyzeArgs {
        paths: vec![dir.display().to_string()],
        quiet: true,
        jobs: Some(jobs),
        chunk_bytes: Some(chunk),
        ..Default::default()
    };
    let mut cfg = Config::from_args(&args).unwrap();
    let a = upcause::analyze(&mut cfg, false).unwrap();
    let stats: Vec<String> = a
        .sources
        .iter()
        .zip(&a.scan.stats)
        .map(|(s, st)| {
            assert!(st.reconciles(), "{}: {st:?}", s.display);
            let name = s.path.file_name().unwrap().to_string_lossy().replace(".gz", "");
            format!("{name} {} {} {} {}", st.lines, st.parsed, st.malformed, st.skipped)
        })
        .collect();
    let events: Vec<String> = a
        .scan
        .requests
        .iter()
        .map(|r| format!("{} {} {:?} {}", r.ts, r.line, r.uri(), r.status))
        .chain(a.scan.error_rows().iter().map(|e| format!("{} {} {}", e.ts, e.line, e.message())))
        .collect();
    // The counters too: each task's join the run's as it ends (`scan::scan`), so a run cut
    // into many tasks on two threads must count what one task on one thread counts.
    let t = &a.scan.traffic;
    let mut counters: Vec<String> = t.per_sec.iter().map(|(s, row)| format!("sec {s} {row:?}")).collect();
    counters.extend(t.lat.minutes.iter().map(|(m, h)| format!("min {m} {h:?}")));
    let mut keyed: Vec<String> = t.hosts.iter().map(|(k, v)| format!("host {k:?} {v:?}")).collect();
    keyed.extend(t.peers.iter().map(|(k, v)| format!("peer {k:?} {v:?}")));
    keyed.sort();
    counters.extend(keyed);
    let mut stats = stats;
    stats.sort();
    (stats.join("\n"), events.into_iter().chain(counters).collect::<Vec<_>>().join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn any_chunk_size_thread_count_or_compression_gives_the_same_result(
        access in prop::collection::vec(line(), 0..300),
        error in prop::collection::vec(line(), 0..120),
        chunk in 4096usize..20_000,
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let base = tempfile::tempdir().unwrap();
        let (plain, gz) = (base.path().join("plain"), base.path().join("gz"));
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&gz).unwrap();
        let eol = if crlf { "\r\n" } else { "\n" };
        // Make the files big enough to be cut into several chunks.
        for (name, lines) in [("access.log", &access), ("error.log", &error)] {
            let mut text: String = lines.iter().cycle().take(lines.len() * 20).map(|l| format!("{l}{eol}")).collect();
            if !final_newline && text.ends_with(eol) {
                text.truncate(text.len() - eol.len());
            }
            // A rotated name: mapped and chunked, not the live file.
            std::fs::write(plain.join(format!("{name}.1")), &text).unwrap();
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text.as_bytes()).unwrap();
            std::fs::write(gz.join(format!("{name}.1.gz")), e.finish().unwrap()).unwrap();
        }
        if access.is_empty() && error.is_empty() {
            return Ok(());
        }
        let whole = run(&plain, 8 << 20, 1);
        let chunked = run(&plain, chunk, 2);
        let zipped = run(&gz, chunk, 2);
        prop_assert_eq!(&whole, &chunked);
        prop_assert_eq!(&whole, &zipped);
    }
}
