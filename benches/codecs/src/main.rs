//! Codec bake-off, built once per backend by benches/codecs.sh (one cargo feature each).
//!
//! `codecs-bakeoff DIR CODEC BACKEND READ_KIB [check]`: decode every file of DIR ending in the
//! codec's extension (zstd `.zst`, xz `.xz`, bzip2 `.bz2`) as one stream of all its
//! frames/streams, on one thread, reading into a READ_KIB KiB buffer, counting newlines with
//! memchr. The files are read into memory first; only decoding is timed. Prints
//! `<decompressed bytes> <seconds> <lines> <fnv1a-64 or ->`; with `check` the output bytes are
//! also hashed (FNV-1a 64, byte by byte: slower, so not for timing).
//!
//! `codecs-bakeoff --probe FILE CODEC BACKEND ORIGINAL READ_KIB`: decode one file that may be
//! truncated or corrupt and print `ok|err out=<bytes decoded> in=<compressed bytes consumed>/<size>
//! <prefix|GARBAGE|identical|DIFFERENT> <error>`, where the third field compares the bytes
//! delivered with ORIGINAL (the uncompressed file): `prefix` means everything delivered before
//! the error is a prefix of it, `GARBAGE` that some delivered bytes are not.

use std::io::{self, BufRead, Read, Write};
use std::time::Instant;

/// The compressed input: a slice that counts what the decoder has taken from it.
struct Src<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Read for Src<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.data[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl BufRead for Src<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.data[self.pos..])
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

/// Where the decoded bytes go: newline count, optional FNV-1a, optional comparison.
struct Sink<'a> {
    bytes: u64,
    lines: u64,
    fnv: Option<u64>,
    orig: Option<&'a [u8]>,
    prefix_ok: bool,
}

impl<'a> Sink<'a> {
    fn new(check: bool, orig: Option<&'a [u8]>) -> Self {
        Sink {
            bytes: 0,
            lines: 0,
            fnv: check.then_some(0xcbf2_9ce4_8422_2325),
            orig,
            prefix_ok: true,
        }
    }

    fn feed(&mut self, b: &[u8]) {
        if let Some(o) = self.orig {
            let at = self.bytes as usize;
            if o.get(at..at + b.len()) != Some(b) {
                self.prefix_ok = false;
            }
        }
        self.bytes += b.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', b).count() as u64;
        if let Some(h) = &mut self.fnv {
            for &x in b {
                *h = (*h ^ x as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.feed(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[allow(dead_code)] // not every backend build maps errors
fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// ruzstd's StreamingDecoder reads one frame; this reads every frame of the input, skips
/// skippable frames and checks each frame's content checksum, as libzstd does.
#[cfg(feature = "ruzstd")]
struct RuzstdFrames<R: BufRead> {
    src: R,
    dec: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
}

#[cfg(feature = "ruzstd")]
impl<R: BufRead> Read for RuzstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        use ruzstd::decoding::BlockDecodingStrategy;
        loop {
            if !self.in_frame {
                if self.src.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                match self.dec.reset(&mut self.src) {
                    Ok(()) => self.in_frame = true,
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        let n = io::copy(&mut (&mut self.src).take(length as u64), &mut io::sink())?;
                        if n != length as u64 {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "truncated skippable frame",
                            ));
                        }
                    }
                    Err(e) => return Err(invalid(e)),
                }
                continue;
            }
            if self.dec.can_collect() == 0 && !self.dec.is_finished() {
                self.dec
                    .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(invalid)?;
                continue;
            }
            let n = self.dec.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if let Some(want) = self.dec.get_checksum_from_data() {
                let got = self.dec.get_calculated_checksum();
                if got != Some(want) {
                    return Err(invalid(format!(
                        "frame checksum mismatch: {want:08x} in frame, {got:08x?} computed"
                    )));
                }
            }
            self.in_frame = false;
        }
    }
}

/// Decode all of `src` into `sink` with the named backend, reading `buf.len()` bytes at a time.
// Each build has one backend: in the lzma-rs build the Read loop is unreachable.
#[allow(unreachable_code, unused_variables, unused_mut)]
fn decode(
    codec: &str,
    backend: &str,
    src: &mut Src,
    buf: &mut [u8],
    sink: &mut Sink,
) -> io::Result<()> {
    let mut r: Box<dyn Read + '_> = match (codec, backend) {
        #[cfg(feature = "zstd")]
        ("zstd", "zstd") => Box::new(zstd::stream::read::Decoder::with_buffer(src)?),
        #[cfg(feature = "ruzstd")]
        ("zstd", "ruzstd") => Box::new(RuzstdFrames {
            src,
            dec: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }),
        #[cfg(feature = "liblzma")]
        ("xz", "liblzma") => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(src)),
        #[cfg(feature = "xz2")]
        ("xz", "xz2") => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(src)),
        #[cfg(feature = "lzma-rust2")]
        ("xz", "lzma-rust2") => Box::new(lzma_rust2::XzReader::new(src, true)),
        // lzma-rs has no Read adapter for xz: it pushes each whole decoded block into a Write
        // (buffering the block in memory), and rejects anything after the first stream.
        #[cfg(feature = "lzma-rs")]
        ("xz", "lzma-rs") => return lzma_rs::xz_decompress(src, sink).map_err(invalid),
        #[cfg(feature = "bzip2-rs")]
        ("bzip2", "bzip2-rs") => Box::new(bzip2::bufread::MultiBzDecoder::new(src)),
        #[cfg(feature = "bzip2-c")]
        ("bzip2", "bzip2-c") => Box::new(bzip2::bufread::MultiBzDecoder::new(src)),
        _ => {
            return Err(io::Error::other(format!(
                "backend {backend} for {codec} is not built into this binary"
            )))
        }
    };
    loop {
        let n = r.read(buf)?;
        if n == 0 {
            return Ok(());
        }
        sink.feed(&buf[..n]);
    }
}

fn ext(codec: &str) -> &'static str {
    match codec {
        "zstd" => "zst",
        "xz" => "xz",
        "bzip2" => "bz2",
        _ => panic!("codec must be zstd, xz or bzip2, not {codec}"),
    }
}

fn probe(args: &[String]) {
    let [file, codec, backend, orig, kib] = args else {
        panic!("--probe FILE CODEC BACKEND ORIGINAL READ_KIB")
    };
    let data = std::fs::read(file).unwrap();
    let orig = std::fs::read(orig).unwrap();
    let mut buf = vec![0u8; kib.parse::<usize>().unwrap() << 10];
    let mut src = Src { data: &data, pos: 0 };
    let mut sink = Sink::new(false, Some(&orig));
    let res = decode(codec, backend, &mut src, &mut buf, &mut sink);
    let cmp = match (&res, sink.prefix_ok) {
        (_, false) => "GARBAGE",
        (Ok(_), true) if sink.bytes == orig.len() as u64 => "identical",
        (Ok(_), true) => "short",
        (Err(_), true) => "prefix",
    };
    let (status, msg) = match &res {
        Ok(()) => ("ok", String::new()),
        Err(e) => ("err", format!("{:?}: {}", e.kind(), e).replace('\n', " ")),
    };
    println!(
        "{status} out={} in={}/{} {cmp} {msg}",
        sink.bytes,
        src.pos,
        data.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--probe") {
        return probe(&args[1..]);
    }
    let [dir, codec, backend, kib, rest @ ..] = &args[..] else {
        panic!("usage: codecs-bakeoff DIR CODEC BACKEND READ_KIB [check]")
    };
    let check = rest.first().map(String::as_str) == Some("check");
    let ext = ext(codec);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.{ext} file in {dir}");
    let datas: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let mut buf = vec![0u8; kib.parse::<usize>().unwrap() << 10];
    let mut sink = Sink::new(check, None);
    let t = Instant::now();
    for (d, p) in datas.iter().zip(&files) {
        let mut src = Src { data: d, pos: 0 };
        if let Err(e) = decode(codec, backend, &mut src, &mut buf, &mut sink) {
            eprintln!("{}: {e} (after {} compressed bytes)", p.display(), src.pos);
            std::process::exit(1);
        }
    }
    let s = t.elapsed().as_secs_f64();
    let fnv = sink.fnv.map_or("-".to_string(), |h| format!("{h:016x}"));
    println!("{} {:.3} {} {}", sink.bytes, s, sink.lines, fnv);
}
