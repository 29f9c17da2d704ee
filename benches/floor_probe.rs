//! The floor of an analysis: read every file once, inflate the gzip ones, count newlines.
//! Nothing else. `benches/run.sh` compares `upcause analyze` against this.
//!
//! Usage: cargo run --release --example floor_probe -- DIR THREADS DECODER
//! DECODER: `upcause` (flate2 as upcause builds it: the zlib-rs backend, 1 MiB reads),
//! `miniz` (miniz_oxide, flate2's default backend, driven directly with 32 KiB reads) or, built
//! with `--features isal`, `isal` (isal-rs's multi-member reader, 1 MiB reads: ISA-L's inflate
//! speed; upcause's gzip reader adds member-end checks to it, `src/open/gzip_isal.rs`), and
//! `reader-zlib-rs` / `reader-isal`: upcause's gzip reader itself (`gzip::decode_blocks_with`,
//! 1 MiB record-aligned blocks) with each inflater.
//! Prints `lines bytes_out`.

use rayon::prelude::*;
use std::io::Read;
use std::path::PathBuf;
use upcause::open::gzip::{self, Inflater};

/// Lines and bytes a reader gives until its end or first error.
fn count_read(mut d: impl Read, buf: &mut [u8]) -> (u64, u64) {
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        match d.read(buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
                bytes += n as u64;
            }
        }
    }
    (lines, bytes)
}

fn count_flate2(data: &[u8], buf: &mut [u8]) -> (u64, u64) {
    count_read(flate2::bufread::MultiGzDecoder::new(data), buf)
}

/// Every member inflated by ISA-L through isal-rs's reader (which goes on across members).
#[cfg(feature = "isal")]
fn count_isal(data: &[u8], buf: &mut [u8]) -> (u64, u64) {
    // Boxed: the reader points into its own buffer once it has read, so it must not move.
    count_read(Box::new(isal::read::Decoder::new(data, isal::Codec::Gzip)), buf)
}

/// upcause's own gzip reader (record-aligned 1 MiB blocks) with the given inflater.
fn count_reader(inflater: Inflater, data: &[u8]) -> (u64, u64) {
    let mut lines = 0u64;
    let rep = gzip::decode_blocks_with(
        inflater,
        data,
        1 << 20,
        false,
        &|_, _| true,
        &mut |b: &[u8]| lines += memchr::memchr_iter(b'\n', b).count() as u64,
        &mut |_| {},
    );
    (lines, rep.decoded)
}

/// gzip members decoded with miniz_oxide's streaming inflate (header parsed here).
fn count_miniz(mut data: &[u8], buf: &mut [u8]) -> (u64, u64) {
    use miniz_oxide::inflate::stream::{inflate, InflateState};
    use miniz_oxide::{DataFormat, MZFlush, MZStatus};
    let (mut lines, mut bytes) = (0u64, 0u64);
    while data.len() > 18 && data[0] == 0x1f && data[1] == 0x8b {
        let flg = data[3];
        let mut p = 10;
        if flg & 4 != 0 {
            p += 2 + u16::from_le_bytes([data[p], data[p + 1]]) as usize;
        }
        for bit in [8u8, 16] {
            if flg & bit != 0 {
                p += data[p..].iter().position(|&c| c == 0).unwrap_or(0) + 1;
            }
        }
        if flg & 2 != 0 {
            p += 2;
        }
        let mut st = InflateState::new_boxed(DataFormat::Raw);
        let mut input = &data[p..];
        loop {
            let r = inflate(&mut st, input, buf, MZFlush::None);
            input = &input[r.bytes_consumed..];
            lines += memchr::memchr_iter(b'\n', &buf[..r.bytes_written]).count() as u64;
            bytes += r.bytes_written as u64;
            match r.status {
                Ok(MZStatus::StreamEnd) => break,
                Ok(_) if r.bytes_consumed == 0 && r.bytes_written == 0 => return (lines, bytes),
                Ok(_) => {}
                Err(_) => return (lines, bytes),
            }
        }
        data = input.get(8..).unwrap_or(&[]);
    }
    (lines, bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("bench-corpus"));
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let decoder = args.get(3).cloned().unwrap_or_else(|| "upcause".into());
    let known = [
        "upcause",
        "miniz",
        "reader-zlib-rs",
        #[cfg(feature = "isal")]
        "isal",
        #[cfg(feature = "isal")]
        "reader-isal",
    ];
    if !known.contains(&decoder.as_str()) {
        eprintln!("unknown DECODER {decoder}: this build knows {known:?} (isal ones need --features isal)");
        std::process::exit(2);
    }
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n.to_string_lossy().contains(".log")))
        .map(|p| (std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0), p))
        .collect();
    files.sort_by(|a, b| b.cmp(a));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let (lines, bytes) = pool.install(|| {
        files
            .par_iter()
            .map(|(_, p)| {
                let data = std::fs::read(p).unwrap();
                let gz = data.len() > 2 && data[0] == 0x1f && data[1] == 0x8b;
                if !gz {
                    return (memchr::memchr_iter(b'\n', &data).count() as u64, data.len() as u64);
                }
                let mut buf = vec![0u8; if decoder == "miniz" { 32 << 10 } else { 1 << 20 }];
                match decoder.as_str() {
                    "miniz" => count_miniz(&data, &mut buf),
                    #[cfg(feature = "isal")]
                    "isal" => count_isal(&data, &mut buf),
                    "reader-zlib-rs" => count_reader(Inflater::ZlibRs, &data),
                    #[cfg(feature = "isal")]
                    "reader-isal" => count_reader(Inflater::Isal, &data),
                    _ => count_flate2(&data, &mut buf),
                }
            })
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    println!("{lines} {bytes}");
}
