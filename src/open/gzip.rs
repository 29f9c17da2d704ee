//! Streaming gzip decoding into record-aligned blocks.
//!
//! Input: the compressed bytes of one file (mapped), the block size, and the record-start
//! rule of its log kind. Output: calls `sink(block)` with decoded blocks that end on record
//! boundaries, then returns a `Report` (members decoded, bytes out, problems with the
//! compressed byte offset). Invariants: memory is one block buffer (grown only to hold one
//! over-long record, at most `MAX_BLOCK`); every member of a multi-member file is decoded; a
//! truncated stream yields what was decoded plus a problem; a corrupt member is reported and
//! decoding resumes at the next gzip header after it; nothing decoded is withheld. The
//! inflater (`Inflater`) changes the speed, not the blocks or the report: flate2 with zlib-rs
//! decides every member that ISA-L (feature `isal`, `gzip_isal`) does not decode cleanly.

use super::blocks::Blocks;
pub use super::blocks::{Problem, ProblemKind, Report};
use crate::chunk::StartRule;
use flate2::bufread::GzDecoder;
use std::io::Read;

const MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

pub fn is_gzip(head: &[u8]) -> bool {
    head.len() >= 3 && head[..3] == MAGIC
}

/// The inflate implementation of gzip members. Chosen at run time, so one build can test
/// and bench both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inflater {
    /// flate2 with the zlib-rs backend: always built, the reference.
    ZlibRs,
    /// ISA-L (isal-rs), with flate2 deciding every member it does not decode cleanly.
    #[cfg(feature = "isal")]
    Isal,
}

impl Inflater {
    /// Every inflater of this build.
    pub const ALL: &'static [Inflater] = &[
        Inflater::ZlibRs,
        #[cfg(feature = "isal")]
        Inflater::Isal,
    ];

    /// The last of `ALL`: ISA-L when built with it, else zlib-rs.
    pub const DEFAULT: Inflater = Inflater::ALL[Inflater::ALL.len() - 1];

    /// The build's default (ISA-L when built with it), unless `UPCAUSE_INFLATE` names
    /// another (`zlib-rs` or `isal`). Read once per process.
    pub fn from_env() -> Inflater {
        static CHOSEN: std::sync::OnceLock<Inflater> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let want = std::env::var("UPCAUSE_INFLATE").unwrap_or_default();
            Inflater::ALL.iter().copied().find(|i| i.name() == want).unwrap_or(Inflater::DEFAULT)
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Inflater::ZlibRs => "zlib-rs",
            #[cfg(feature = "isal")]
            Inflater::Isal => "isal",
        }
    }
}

/// Decode every member of `data`, calling `sink` with record-aligned blocks and `progress`
/// with compressed bytes consumed, with the inflater of `Inflater::from_env`.
pub fn decode_blocks<F: FnMut(&[u8])>(
    data: &[u8],
    block: usize,
    multiline: bool,
    is_start: StartRule,
    sink: &mut F,
    progress: &mut dyn FnMut(u64),
) -> Report {
    decode_blocks_with(Inflater::from_env(), data, block, multiline, is_start, sink, progress)
}

/// `decode_blocks` with a given inflater (same blocks and report with any of them).
pub fn decode_blocks_with<F: FnMut(&[u8])>(
    inflater: Inflater,
    data: &[u8],
    block: usize,
    multiline: bool,
    is_start: StartRule,
    sink: &mut F,
    progress: &mut dyn FnMut(u64),
) -> Report {
    let mut report = Report::default();
    let mut b = Blocks::new(block, multiline, is_start, sink);
    // Where the run of NULs that ends the file starts (a member may end there).
    #[cfg(feature = "isal")]
    let zero_tail = data.len() - data.iter().rev().take_while(|&&c| c == 0).count();
    let mut pos = 0usize;
    while pos < data.len() {
        if !data[pos..].starts_with(&MAGIC) {
            let rest = &data[pos..];
            let msg = if rest.iter().all(|&c| c == 0) {
                format!("{} NUL bytes after the last gzip member (ignored)", rest.len())
            } else {
                format!("{} bytes after the last gzip member are not gzip data (ignored)", rest.len())
            };
            report.problems.push(Problem { kind: ProblemKind::TrailingData, offset: pos as u64, message: msg });
            break;
        }
        let member_start = pos;
        // Decoded bytes of this member already in the blocks, compressed bytes already
        // reported, by ISA-L before it gave the member back.
        let (mut skip, mut credit) = (0u64, 0u64);
        match inflater {
            Inflater::ZlibRs => {}
            #[cfg(feature = "isal")]
            Inflater::Isal => match super::gzip_isal::member(data, pos, zero_tail, &mut b, progress) {
                super::gzip_isal::Member::Done(end) => {
                    report.members += 1;
                    pos = end;
                    continue;
                }
                super::gzip_isal::Member::Fallback { emitted, progressed } => (skip, credit) = (emitted, progressed),
            },
        }
        let mut dec = GzDecoder::new(&data[pos..]);
        let mut last_remaining = data.len() - pos;
        let mut advance = |remaining: usize, progress: &mut dyn FnMut(u64)| {
            let d = (last_remaining - remaining) as u64;
            last_remaining = remaining;
            let fresh = d.saturating_sub(credit);
            credit -= d - fresh;
            if fresh > 0 {
                progress(fresh);
            }
        };
        let outcome = loop {
            b.make_room();
            let filled = b.filled;
            // While skipping, read no further than the skip ends, so the reads after it
            // cover the same spans of output as a decode without ISA-L (`gzip_isal`'s doc,
            // "Equivalence").
            let room = b.buf.len() - filled;
            let want = if skip > 0 { room.min(skip as usize) } else { room };
            match dec.read(&mut b.buf[filled..filled + want]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if skip > 0 {
                        skip -= n as u64;
                    } else {
                        b.filled += n;
                        b.decoded += n as u64;
                    }
                    advance(dec.get_ref().len(), progress);
                }
                Err(e) => break Err(e),
            }
        };
        let remaining = dec.get_ref().len();
        advance(remaining, progress);
        let consumed = data.len() - pos - remaining;
        match outcome {
            Ok(()) => {
                report.members += 1;
                pos += consumed.max(1);
            }
            Err(e) => {
                // Hand over what was decoded, the partial last line as its own line.
                b.flush();
                let at = (pos + consumed) as u64;
                if remaining == 0 {
                    report.problems.push(Problem {
                        kind: ProblemKind::Truncated,
                        offset: at,
                        message: format!(
                            "gzip stream truncated at byte {at} (member starting at byte {member_start}): {e}; {} decoded bytes kept",
                            b.decoded
                        ),
                    });
                    break;
                }
                let resume = memchr::memmem::find(&data[member_start + 1..], &MAGIC).map(|p| member_start + 1 + p);
                let msg = match resume {
                    Some(r) => format!(
                        "corrupt gzip member at byte {member_start} (error at byte {at}: {e}); skipped {} compressed bytes, resumed at the next member at byte {r}",
                        r - member_start
                    ),
                    None => format!(
                        "corrupt gzip member at byte {member_start} (error at byte {at}: {e}); the rest of the file ({} bytes) has no further gzip member",
                        data.len() - member_start
                    ),
                };
                report.problems.push(Problem { kind: ProblemKind::Corrupt, offset: member_start as u64, message: msg });
                match resume {
                    Some(r) => pos = r,
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

/// Decode up to `limit` bytes of the start of a gzip file (for sniffing its kind).
pub fn head(data: &[u8], limit: usize) -> Vec<u8> {
    let mut out = vec![0; limit];
    let mut dec = flate2::bufread::MultiGzDecoder::new(data);
    let mut n = 0;
    while n < limit {
        match dec.read(&mut out[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Blocks, their sizes and the report from one inflater.
    fn decode_with(inflater: Inflater, data: &[u8], block: usize) -> (Vec<u8>, Vec<usize>, Report) {
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        let rep = decode_blocks_with(
            inflater,
            data,
            block,
            false,
            &|_, _| true,
            &mut |b: &[u8]| {
                sizes.push(b.len());
                out.extend_from_slice(b)
            },
            &mut |_| {},
        );
        (out, sizes, rep)
    }

    /// The same from every inflater of the build, which must agree exactly.
    fn decode(data: &[u8], block: usize) -> (Vec<u8>, Vec<usize>, Report) {
        let want = decode_with(Inflater::ZlibRs, data, block);
        for &i in &Inflater::ALL[1..] {
            assert_eq!(decode_with(i, data, block), want, "{} differs from zlib-rs", i.name());
        }
        want
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| format!("line {i} some payload to make it longer\n")).collect::<String>().into_bytes()
    }

    #[test]
    fn multi_member_and_blocks_end_on_newlines() {
        let a = text(3000);
        let b = text(2000);
        let mut data = gz(&a);
        data.extend(gz(&b));
        let (out, sizes, rep) = decode(&data, 4096);
        assert_eq!(out, [a.clone(), b].concat());
        assert_eq!(rep.members, 2);
        assert!(rep.problems.is_empty());
        assert!(sizes.len() > 10);
        let mut acc = 0;
        for s in &sizes[..sizes.len() - 1] {
            acc += s;
            assert_eq!(out[acc - 1], b'\n');
        }
    }

    #[test]
    fn truncated_keeps_decoded_prefix() {
        let a = text(20_000);
        let data = gz(&a);
        let cut = &data[..data.len() / 2];
        let (out, _, rep) = decode(cut, 1 << 16);
        assert!(!out.is_empty() && out.len() < a.len());
        assert!(a.starts_with(&out));
        assert_eq!(rep.problems.len(), 1);
        assert_eq!(rep.problems[0].kind, ProblemKind::Truncated);
    }

    #[test]
    fn corrupt_member_is_skipped_and_next_member_decoded() {
        let a = text(5000);
        let b = text(10);
        let mut first = gz(&a);
        let mid = first.len() / 2;
        for x in &mut first[mid..mid + 64] {
            *x ^= 0x55;
        }
        let mut data = first;
        data.extend(gz(&b));
        let (out, _, rep) = decode(&data, 1 << 16);
        assert!(out.ends_with(&b));
        assert!(rep.problems.iter().any(|p| p.kind == ProblemKind::Corrupt));
    }

    #[test]
    fn trailing_zeros_are_reported() {
        let mut data = gz(b"x\n");
        data.extend([0u8; 100]);
        let (out, _, rep) = decode(&data, 4096);
        assert_eq!(out, b"x\n");
        assert_eq!(rep.problems[0].kind, ProblemKind::TrailingData);
        assert_eq!(head(&gz(&text(100)), 10), b"line 0 som");
    }
}
