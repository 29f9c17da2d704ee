//! Wrap a bench corpus (`benches/gen_corpus.rs`) as Docker's json-file driver writes container
//! logs, for the envelope bench (`benches/wrapped.sh`): every file of the corpus becomes a file
//! of the same name (and compression) whose lines are `{"log":"<line>\n","stream":...,"time":...}`
//! records, access logs on stdout and the rest on stderr. The same input gives the same bytes.
//!
//! Usage: cargo run --release --example wrap_corpus -- CORPUS_DIR OUT_DIR

use flate2::{read::MultiGzDecoder, write::GzEncoder, Compression};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (src, out) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    std::fs::create_dir_all(&out).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".log"))
        .collect();
    names.sort();
    for name in names {
        let raw = std::fs::File::open(src.join(&name)).unwrap();
        let gz = name.ends_with(".gz");
        let input: Box<dyn Read> = if gz { Box::new(MultiGzDecoder::new(raw)) } else { Box::new(raw) };
        let f = std::fs::File::create(out.join(&name)).unwrap();
        let mut w: Box<dyn Write> = if gz {
            Box::new(BufWriter::with_capacity(1 << 20, GzEncoder::new(f, Compression::new(1))))
        } else {
            Box::new(BufWriter::with_capacity(1 << 20, f))
        };
        let stream = if name.contains("access") { "stdout" } else { "stderr" };
        // A synthetic, increasing envelope time: the inner lines carry their own stamps.
        let mut t: u64 = 1_795_651_200_000_000_000;
        for line in BufReader::with_capacity(1 << 20, input).split(b'\n') {
            let mut line = line.unwrap();
            line.push(b'\n');
            let log = serde_json::to_string(&String::from_utf8_lossy(&line)).unwrap();
            t += 1_000_037;
            let (secs, ns) = (t / 1_000_000_000, t % 1_000_000_000);
            let days = (secs / 86_400) as i64;
            let (y, m, d) = upcause::model::time::civil_from_days(days);
            let s = secs % 86_400;
            writeln!(
                w,
                r#"{{"log":{log},"stream":"{stream}","time":"{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ns:09}Z"}}"#,
                s / 3600,
                s / 60 % 60,
                s % 60
            )
            .unwrap();
        }
        w.flush().unwrap();
    }
}
