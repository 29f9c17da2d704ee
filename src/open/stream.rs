//! Compressed files of any codec upcause reads: recognised by magic bytes and decoded as
//! streams into record-aligned blocks (gzip by `gzip`, zstd, xz and bzip2 here).
//!
//! Input: the compressed bytes of one file (mapped), the block size, the record-start rule.
//! Output: calls `sink(block)` with decoded blocks that end on record boundaries, then a
//! `Report` (bytes out, problems with the compressed byte offset). Invariants: the codec comes
//! from the content, never the name; every frame (zstd) or stream (xz, bzip2) of a file is
//! decoded, as `zstd -d`, `xz -d` and `bzip2 -d` do; a truncated file yields what decoded plus
//! a problem; a corrupt frame or stream is reported and decoding resumes at the next one after
//! it; memory is one block buffer plus the decoder's window.
//!
//! Decoders, chosen by measurement (`benches/codecs.sh`, README Performance): libzstd through
//! the `zstd` crate, liblzma through `liblzma`, and `bzip2` with its pure-Rust backend.

use super::blocks::Blocks;
pub use super::blocks::{Problem, ProblemKind, Report};
use super::gzip;
use crate::chunk::StartRule;
use crate::model::Compression;
use std::io::Read;

const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XZ: [u8; 6] = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/// A zstd skippable frame's magic (`0x184D2A50` to `0x184D2A5F`, little-endian).
fn zstd_skippable(b: &[u8]) -> bool {
    b.len() >= 4 && b[0] & 0xf0 == 0x50 && b[1..4] == [0x2a, 0x4d, 0x18]
}

fn bzip2_magic(b: &[u8]) -> bool {
    b.len() >= 4 && &b[..3] == b"BZh" && (b'1'..=b'9').contains(&b[3])
}

/// The codec of a file from its first bytes.
pub fn codec_of(head: &[u8]) -> Compression {
    if gzip::is_gzip(head) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD) || zstd_skippable(head) {
        Compression::Zstd
    } else if head.starts_with(&XZ) {
        Compression::Xz
    } else if bzip2_magic(head) {
        Compression::Bzip2
    } else {
        Compression::Plain
    }
}

/// A compressor upcause does not read, by its magic bytes (named in the skip reason rather
/// than "binary content").
pub fn unsupported(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        Some("lz4")
    } else if head.starts_with(&[0x1f, 0x9d]) {
        Some("compress (.Z)")
    } else if head.starts_with(b"LZIP") {
        Some("lzip")
    } else if head.starts_with(&[0x89, b'L', b'Z', b'O']) {
        Some("lzop")
    } else if head.starts_with(b"PK\x03\x04") {
        Some("zip")
    } else {
        None
    }
}

/// Where the next frame or stream of `codec` starts in `data`, at or after `from`.
fn next_start(codec: Compression, data: &[u8], from: usize) -> Option<usize> {
    let rest = data.get(from..)?;
    let hit = match codec {
        Compression::Zstd => memchr::memmem::find_iter(rest, &ZSTD[..]).next(),
        Compression::Xz => memchr::memmem::find(rest, &XZ),
        Compression::Bzip2 => memchr::memmem::find_iter(rest, b"BZh").find(|&p| bzip2_magic(&rest[p..])),
        Compression::Gzip | Compression::Plain => None,
    };
    hit.map(|p| from + p)
}

/// A decoder of one frame (zstd) or stream (xz, bzip2) over `data`, and how much of `data`
/// it has not read yet. One unit at a time, as gzip members are read, so that a problem is
/// placed in its frame and decoding resumes after it.
enum Dec<'a> {
    Zstd(zstd::stream::read::Decoder<'static, &'a [u8]>),
    Xz(liblzma::bufread::XzDecoder<&'a [u8]>),
    Bzip2(bzip2::bufread::BzDecoder<&'a [u8]>),
    /// Decodes every unit (for reading a file's head).
    Multi(Box<dyn Read + 'a>),
}

impl<'a> Dec<'a> {
    fn one(codec: Compression, data: &'a [u8]) -> std::io::Result<Dec<'a>> {
        Ok(match codec {
            Compression::Zstd => Dec::Zstd(zstd::stream::read::Decoder::with_buffer(data)?.single_frame()),
            Compression::Xz => Dec::Xz(liblzma::bufread::XzDecoder::new(data)),
            _ => Dec::Bzip2(bzip2::bufread::BzDecoder::new(data)),
        })
    }

    fn all(codec: Compression, data: &'a [u8]) -> std::io::Result<Dec<'a>> {
        Ok(Dec::Multi(match codec {
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(data)?),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(data)),
            _ => Box::new(bzip2::bufread::MultiBzDecoder::new(data)),
        }))
    }

    fn remaining(&self) -> usize {
        match self {
            Dec::Zstd(d) => d.get_ref().len(),
            Dec::Xz(d) => d.get_ref().len(),
            Dec::Bzip2(d) => d.get_ref().len(),
            Dec::Multi(_) => 0,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Dec::Zstd(d) => d.read(buf),
            Dec::Xz(d) => d.read(buf),
            Dec::Bzip2(d) => d.read(buf),
            Dec::Multi(d) => d.read(buf),
        }
    }
}

/// Decode a compressed file of any codec into record-aligned blocks (`gzip` for gzip).
pub fn decode_blocks<F: FnMut(&[u8])>(
    codec: Compression,
    data: &[u8],
    block: usize,
    multiline: bool,
    is_start: StartRule,
    sink: &mut F,
    progress: &mut dyn FnMut(u64),
) -> Report {
    if codec == Compression::Gzip || codec == Compression::Plain {
        return gzip::decode_blocks(data, block, multiline, is_start, sink, progress);
    }
    let name = codec.as_str();
    let unit = if codec == Compression::Zstd { "frame" } else { "stream" };
    let mut report = Report::default();
    let mut b = Blocks::new(block, multiline, is_start, sink);
    let mut pos = 0usize;
    while pos < data.len() {
        // xz pads between streams with zeros (a multiple of four bytes).
        if codec == Compression::Xz && data[pos] == 0 {
            let n = data[pos..].iter().take_while(|&&c| c == 0).count();
            progress(n as u64);
            pos += n;
            continue;
        }
        if next_start(codec, data, pos) != Some(pos) && !(codec == Compression::Zstd && zstd_skippable(&data[pos..])) {
            let rest = &data[pos..];
            let msg = if rest.iter().all(|&c| c == 0) {
                format!("{} NUL bytes after the last {name} {unit} (ignored)", rest.len())
            } else {
                format!("{} bytes after the last {name} {unit} are not {name} data (ignored)", rest.len())
            };
            report.problems.push(Problem { kind: ProblemKind::TrailingData, offset: pos as u64, message: msg });
            break;
        }
        let start = pos;
        let slice = &data[pos..];
        let mut last = slice.len();
        let outcome = match Dec::one(codec, slice) {
            Err(e) => Err((e, 0)),
            Ok(mut dec) => loop {
                b.make_room();
                let filled = b.filled;
                match dec.read(&mut b.buf[filled..]) {
                    Ok(0) => break Ok(slice.len() - dec.remaining()),
                    Ok(n) => {
                        b.filled += n;
                        b.decoded += n as u64;
                        let rem = dec.remaining();
                        progress((last - rem) as u64);
                        last = rem;
                    }
                    Err(e) => break Err((e, slice.len() - dec.remaining())),
                }
            },
        };
        match outcome {
            Ok(consumed) => {
                report.members += 1;
                pos += consumed.max(1);
            }
            Err((e, consumed)) => {
                // Hand over what was decoded, the partial last line as its own line.
                b.flush();
                let at = start + consumed;
                if e.kind() == std::io::ErrorKind::UnexpectedEof || at >= data.len() {
                    report.problems.push(Problem {
                        kind: ProblemKind::Truncated,
                        offset: at as u64,
                        message: format!(
                            "{name} file truncated at byte {at} ({unit} starting at byte {start}): {e}; {} decoded bytes kept",
                            b.decoded
                        ),
                    });
                    break;
                }
                let resume = next_start(codec, data, start + 1);
                let msg = match resume {
                    Some(r) => format!(
                        "corrupt {name} {unit} at byte {start} (error at byte {at}: {e}); skipped {} compressed bytes, resumed at the next {unit} at byte {r}",
                        r - start
                    ),
                    None => format!(
                        "corrupt {name} {unit} at byte {start} (error at byte {at}: {e}); the rest of the file ({} bytes) has no further {unit}",
                        data.len() - start
                    ),
                };
                report.problems.push(Problem { kind: ProblemKind::Corrupt, offset: start as u64, message: msg });
                match resume {
                    Some(r) => {
                        progress((r - at.min(r)) as u64);
                        pos = r;
                    }
                    None => break,
                }
            }
        }
    }
    b.flush();
    report.problems.extend(b.oversized());
    report.decoded = b.decoded;
    report
}

/// Decode up to `limit` bytes of the start of a compressed file (for sniffing its kind).
pub fn head(codec: Compression, data: &[u8], limit: usize) -> Vec<u8> {
    if codec == Compression::Gzip {
        return gzip::head(data, limit);
    }
    let mut out = vec![0; limit];
    let mut n = 0;
    if let Ok(mut dec) = Dec::all(codec, data) {
        while n < limit {
            match dec.read(&mut out[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn text(n: usize, tag: &str) -> Vec<u8> {
        (0..n).map(|i| format!("{tag} line {i} with some payload to make it longer\n")).collect::<String>().into_bytes()
    }

    fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
        match codec {
            Compression::Zstd => zstd::stream::encode_all(data, 3).unwrap(),
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            _ => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    fn decode(codec: Compression, data: &[u8]) -> (Vec<u8>, Report) {
        let mut out = Vec::new();
        let rep = decode_blocks(
            codec,
            data,
            4096,
            false,
            &|_, _| true,
            &mut |b: &[u8]| out.extend_from_slice(b),
            &mut |_| {},
        );
        (out, rep)
    }

    const CODECS: [Compression; 3] = [Compression::Zstd, Compression::Xz, Compression::Bzip2];

    #[test]
    fn frames_and_streams_decode_whole_in_line_aligned_blocks() {
        for c in CODECS {
            let (a, b) = (text(3000, "a"), text(2000, "b"));
            let mut data = compress(c, &a);
            data.extend(compress(c, &b));
            assert_eq!(codec_of(&data), c);
            let mut sizes = Vec::new();
            let mut out = Vec::new();
            let rep = decode_blocks(
                c,
                &data,
                4096,
                false,
                &|_, _| true,
                &mut |x: &[u8]| {
                    sizes.push(x.len());
                    out.extend_from_slice(x)
                },
                &mut |_| {},
            );
            assert_eq!(out, [a, b].concat(), "{c}");
            assert!(rep.problems.is_empty(), "{c}: {:?}", rep.problems);
            assert!(sizes.len() > 10 && sizes[..sizes.len() - 1].iter().all(|s| *s > 0));
            assert_eq!(head(c, &data, 10), b"a line 0 w");
        }
    }

    #[test]
    fn truncated_and_corrupt_files_keep_what_decoded() {
        for c in CODECS {
            let a = text(40_000, "a");
            let data = compress(c, &a);
            let (out, rep) = decode(c, &data[..data.len() / 2]);
            assert!(a.starts_with(&out) && out.len() < a.len(), "{c}: {} of {}", out.len(), a.len());
            assert_eq!(rep.problems.len(), 1, "{c}: {:?}", rep.problems);
            assert_eq!(rep.problems[0].kind, ProblemKind::Truncated, "{c}: {:?}", rep.problems);
            // A corrupt first frame, then a good one: the good one is read.
            let mut bad = compress(c, &text(5000, "x"));
            let mid = bad.len() / 2;
            for x in &mut bad[mid..mid + 32] {
                *x ^= 0x5a;
            }
            let good = text(10, "good");
            bad.extend(compress(c, &good));
            let (out, rep) = decode(c, &bad);
            assert!(out.ends_with(&good), "{c}: the frame after the damage is read");
            assert!(rep.problems.iter().any(|p| p.kind == ProblemKind::Corrupt), "{c}: {:?}", rep.problems);
        }
        assert_eq!(unsupported(&[0x04, 0x22, 0x4d, 0x18, 0]), Some("lz4"));
        assert_eq!(codec_of(b"plain text"), Compression::Plain);
    }
}
