//! The floor of an analysis: read every file once, inflate the gzip ones, count newlines.
//! Nothing else. `benches/run.sh` compares `upcause analyze` against this.
//!
//! Usage: cargo run --release --example floor_probe -- DIR THREADS DECODER
//! DECODER: `upcause` (flate2 as upcause builds it: the zlib-rs backend, 1 MiB reads) or
//! `miniz` (miniz_oxide, flate2's default backend, driven directly with 32 KiB reads).
//! Prints `lines bytes_out`.

use rayon::prelude::*;
use std::io::Read;
use std::path::PathBuf;

fn count_flate2(data: &[u8], buf: &mut [u8]) -> (u64, u64) {
    let mut d = flate2::bufread::MultiGzDecoder::new(data);
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
                if decoder == "miniz" {
                    let mut buf = vec![0u8; 32 << 10];
                    count_miniz(&data, &mut buf)
                } else {
                    let mut buf = vec![0u8; 1 << 20];
                    count_flate2(&data, &mut buf)
                }
            })
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    println!("{lines} {bytes}");
}
