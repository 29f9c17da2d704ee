//! `inflate-bakeoff DIR READ_KIB`: inflate every `*.gz` file under DIR on one thread with the
//! backend this binary was built with, count newlines, print `backend bytes_out seconds MB/s`.
//! Multi-member files are decoded member after member, as upcause does.

use std::io::Read;
use std::time::Instant;

fn backend() -> &'static str {
    if cfg!(feature = "isal") {
        "isal"
    } else if cfg!(feature = "zlib-ng") {
        "zlib-ng"
    } else if cfg!(feature = "zlib-rs") {
        "zlib-rs"
    } else {
        "miniz_oxide"
    }
}

#[cfg(feature = "isal")]
fn reader(data: &[u8]) -> Box<dyn Read + '_> {
    Box::new(isal::read::GzipDecoder::new(data))
}

#[cfg(not(feature = "isal"))]
fn reader(data: &[u8]) -> Box<dyn Read + '_> {
    Box::new(flate2::bufread::MultiGzDecoder::new(data))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(&args[1]);
    let read_kib: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect();
    files.sort();
    let datas: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let mut buf = vec![0u8; read_kib << 10];
    let t = Instant::now();
    let (mut bytes, mut lines) = (0u64, 0u64);
    for d in &datas {
        let mut r = reader(d);
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            bytes += n as u64;
            lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!("{} {} {} {:.3} {:.0}", backend(), bytes, lines, s, bytes as f64 / 1e6 / s);
}
