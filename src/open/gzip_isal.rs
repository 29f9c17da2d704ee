//! ISA-L's inflate as the fast path of the gzip reader (cargo feature `isal`).
//!
//! Input: a mapped gzip file, the offset of one member's header, and the block assembler of
//! `gzip::decode_blocks`. Output: that member's decoded bytes pushed into the blocks, then
//! either `Member::Done(end)` (ISA-L decoded the member and verified its CRC-32 and size; the
//! next member or trailing data starts at `end`) or `Member::Fallback` (anything else: corrupt,
//! truncated, a header zlib would judge differently, or a doubt about where the member ends),
//! after which `decode_blocks` decodes the member again with flate2 and skips the bytes this
//! module already handed over.
//!
//! Invariants: `Done` is returned only for a member that ISA-L decoded and checked and that
//! ends exactly at `end`, with a header flate2 accepts, so counts, offsets and problems stay
//! flate2's; the bytes pushed are flate2's but for the one case under "Equivalence"; no
//! `unsafe` and no FFI here: only isal-rs's safe `read::Decoder`, boxed.
//!
//! Finding the member's end. isal-rs's decoder reads its input through `std::io::Read` into a
//! 16 KiB buffer and, at the end of a member, goes straight on to the next one; it reports
//! neither where a member ended nor how much input it used. So `Input` hands out bytes only up
//! to the next place a member may end (a gzip magic, one of the first 8 bytes of a NUL run
//! that ends the file, the end of the file) and then waits, giving nothing, until the decoder
//! asks to fill its whole buffer (it has used every byte given; isal-rs 0.5.3 reads into the
//! free tail of its buffer). Then, if the 4 bytes before that place (a trailer's size field,
//! the decoded size mod 2^32) fit the output so far, it stops for good: the decoder returns
//! `Ok(0)` only at the end of a member with all its input used, so the member ends exactly
//! there; otherwise it runs dry inside the member (a magic inside compressed data, a truncated
//! member) and fails, which falls back to flate2. If the size does not fit, it goes on. A
//! member that ends elsewhere (followed by bytes that are not gzip) makes ISA-L read them as a
//! header and fail: a fallback too. Should a later isal-rs read differently, `Input` would
//! wait forever and every member would fall back: slower, same result.
//!
//! Equivalence. Both decoders are called with the same output slices (the free space of the
//! block buffer) and both return a call's output only if the whole call succeeds, so each
//! hands over the member's decoded bytes up to the last point where the block buffer was
//! full before its error. On a clean member both give the same bytes (deflate is
//! deterministic; ISA-L checks CRC-32 and ISIZE). On a damaged one ISA-L's prefix is flate2's
//! unless ISA-L detects the damage later than zlib-rs does, past a full buffer: those extra
//! bytes stay (flate2 then reports the member as usual). The unit tests and the `gzip` fuzz
//! target compare the two decoders on damaged input and have not found such a case.

use super::blocks::Blocks;
use std::io::{self, Read};

const MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// Smallest gzip member: 10-byte header, 2-byte empty deflate block, 8-byte trailer.
const MIN_MEMBER: usize = 20;
/// Upper bound on what a member can still decode to, beyond the current output slice, once
/// ISA-L has used all its input: its bit buffer and header buffer (8 + 328 bytes, deflate
/// expands at most 1032:1), its 64 KiB + 288 output buffer and a 258-byte match. Generous: a
/// too small bound would pass over a real member end, a looser one only lets a gzip magic in
/// compressed data stop ISA-L more often (each stop costs a fallback of the member).
const DRAINED_BOUND: u64 = 1 << 20;

pub(super) enum Member {
    /// Decoded, verified, and ended at this file offset.
    Done(usize),
    /// Decode the member with flate2, skipping `emitted` decoded bytes already pushed;
    /// `progressed` compressed bytes were already reported to `progress`.
    Fallback { emitted: u64, progressed: u64 },
}

/// Decode the member at `start` of `data` with ISA-L. `zero_tail` is where the run of NUL
/// bytes that ends the file starts (`data.len()` if none).
pub(super) fn member<F: FnMut(&[u8])>(
    data: &[u8],
    start: usize,
    zero_tail: usize,
    b: &mut Blocks<'_, '_, F>,
    progress: &mut dyn FnMut(u64),
) -> Member {
    let fallback = Member::Fallback { emitted: 0, progressed: 0 };
    let rest = &data[start..];
    if !header_is_plain(rest) {
        return fallback;
    }
    let input = Input {
        data: rest,
        zero_tail: zero_tail.saturating_sub(start),
        given: 0,
        waiting: false,
        stopped: false,
        member_out: 0,
        out_len: 0,
    };
    // Boxed: the decoder keeps a pointer into its own inline input buffer between reads, so
    // it must not move once it has read (isal-rs 0.5.3); a box pins it, and keeps ~40 KiB
    // off the stack.
    let mut dec = Box::new(isal::read::Decoder::new(input, isal::Codec::Gzip));
    let (mut emitted, mut progressed) = (0u64, 0u64);
    loop {
        b.make_room();
        let filled = b.filled;
        let out = &mut b.buf[filled..];
        let inp = dec.get_ref_mut();
        inp.member_out = emitted;
        inp.out_len = out.len();
        let res = dec.read(out);
        let given = dec.get_ref().given as u64;
        progress(given - progressed);
        progressed = given;
        match res {
            // Only at a stop of `Input` (end of member with all input used).
            Ok(0) => return Member::Done(start + dec.get_ref().given),
            Ok(n) => {
                b.filled += n;
                b.decoded += n as u64;
                emitted += n as u64;
            }
            Err(_) => return Member::Fallback { emitted, progressed },
        }
    }
}

/// Whether flate2 accepts this member header as ISA-L does: no reserved flag bits, no header
/// CRC (`FHCRC`: flate2 checks it, ISA-L decoded the member after a wrong one: the `gzip`
/// fuzz target found it), and name and comment shorter than flate2's 65,535-byte limit (ISA-L
/// has none). Anything else, including a header cut short by the end of the file, goes to
/// flate2 directly (gzip and nginx never set `FHCRC`).
fn header_is_plain(h: &[u8]) -> bool {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if h.len() < 10 || h[..3] != MAGIC || h[3] & (0xe0 | FHCRC) != 0 {
        return false;
    }
    let flags = h[3];
    let mut p = 10;
    if flags & FEXTRA != 0 {
        let Some(x) = h.get(p..p + 2) else { return false };
        p += 2 + u16::from_le_bytes([x[0], x[1]]) as usize;
    }
    for bit in [FNAME, FCOMMENT] {
        if flags & bit != 0 {
            let field = h.get(p..).unwrap_or(&[]);
            match memchr::memchr(0, &field[..field.len().min(65_535)]) {
                Some(n) => p += n + 1,
                None => return false,
            }
        }
    }
    p <= h.len()
}

/// The member's input as ISA-L reads it: the bytes from the member's start, up to each place
/// the member may end (module doc), where it waits until the decoder has used all it was
/// given and then either stops for good or goes on.
struct Input<'a> {
    /// From the member's header to the end of the file.
    data: &'a [u8],
    /// Start of the file's trailing NUL run, relative to `data`.
    zero_tail: usize,
    /// Bytes handed to the decoder.
    given: usize,
    /// `given` is a place the member may end, to be judged once the decoder has used all.
    waiting: bool,
    /// `given` is where the member ends if it ends cleanly: no more bytes, ever.
    stopped: bool,
    /// Decoded bytes of this member returned before the current `read` call, and the size of
    /// that call's output slice: bound what the member can still decode to.
    member_out: u64,
    out_len: usize,
}

impl Input<'_> {
    /// Whether `m` is in the first 8 bytes of the file's trailing NUL run: the run may begin
    /// inside the trailer (the high bytes of a small ISIZE are NULs), so the member may end at
    /// any of them.
    fn in_zero_run(&self, m: usize) -> bool {
        m >= self.zero_tail && m < self.data.len() && m < self.zero_tail + 8
    }

    /// The first place in (given, end] the member may end: gzip magic or the file's trailing
    /// NULs follow (magic found by memchr on 0x1f, in at most 16 KiB per call).
    fn next_candidate(&self, end: usize) -> Option<usize> {
        let mut p = (self.given + 1).max(MIN_MEMBER);
        while p <= end {
            let hit = memchr::memchr(MAGIC[0], &self.data[p..end.min(self.data.len() - 1) + 1]).map(|i| p + i);
            let z = Some(p.max(self.zero_tail)).filter(|&z| z <= end && self.in_zero_run(z));
            let m = match (hit, z) {
                (Some(h), Some(z)) => h.min(z),
                (Some(h), None) => h,
                (None, Some(z)) => z,
                (None, None) => return None,
            };
            if self.in_zero_run(m) || self.data[m..].starts_with(&MAGIC) {
                return Some(m);
            }
            p = m + 1;
        }
        None
    }

    /// With all input up to `given` used by the decoder, whether the trailer's size field
    /// (ISIZE: the decoded size mod 2^32) just before `given` is within reach: what the member
    /// still decodes to is at most this call's output slice plus what ISA-L holds internally.
    fn size_fits(&self) -> bool {
        let t = &self.data[self.given - 4..self.given];
        let isize = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let ahead = isize.wrapping_sub(self.member_out as u32) as u64;
        ahead <= self.out_len as u64 + DRAINED_BOUND
    }
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stopped || self.given >= self.data.len() {
            return Ok(0);
        }
        if self.waiting {
            // isal-rs refills into the free tail of its 16 KiB buffer: a full-size request
            // means the decoder has used every byte given. Until then, nothing new.
            if buf.len() < isal::BUF_SIZE {
                return Ok(0);
            }
            self.waiting = false;
            if self.size_fits() {
                self.stopped = true;
                return Ok(0);
            }
        }
        let mut end = (self.given + buf.len()).min(self.data.len());
        if let Some(m) = self.next_candidate(end) {
            end = m;
            self.waiting = true;
        }
        let n = end - self.given;
        buf[..n].copy_from_slice(&self.data[self.given..end]);
        self.given = end;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::gzip::{decode_blocks_with, Inflater, Report};
    use super::*;
    use flate2::{write::GzEncoder, Compression, GzBuilder};
    use proptest::prelude::*;
    use std::io::Write;

    fn gz(data: &[u8], level: u32, name: Option<&str>) -> Vec<u8> {
        let mut b = GzBuilder::new();
        if let Some(n) = name {
            b = b.filename(n);
        }
        let mut e: GzEncoder<Vec<u8>> = b.write(Vec::new(), Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn lines(n: usize, seed: u64) -> Vec<u8> {
        (0..n as u64)
            .map(|i| format!("{} GET /p/{} {}\n", i, (i * 7919 + seed) % 1000, i ^ seed))
            .collect::<String>()
            .into_bytes()
    }

    /// Blocks, report and compressed bytes reported as progress.
    fn run(inf: Inflater, data: &[u8], block: usize, multiline: bool) -> (Vec<Vec<u8>>, Report, u64) {
        let mut blocks = Vec::new();
        let mut prog = 0;
        let rep = decode_blocks_with(
            inf,
            data,
            block,
            multiline,
            &|_, l| l.first() != Some(&b' '),
            &mut |b: &[u8]| blocks.push(b.to_vec()),
            &mut |d| prog += d,
        );
        (blocks, rep, prog)
    }

    fn same(data: &[u8], block: usize, multiline: bool) -> Report {
        let (zb, zr, zp) = run(Inflater::ZlibRs, data, block, multiline);
        let (ib, ir, ip) = run(Inflater::Isal, data, block, multiline);
        assert_eq!(ir, zr, "reports differ");
        assert!(ib == zb, "blocks differ: {} vs {} blocks", ib.len(), zb.len());
        if zr.problems.is_empty() {
            assert_eq!((ip, zp), (data.len() as u64, data.len() as u64), "progress");
        }
        zr
    }

    /// ISA-L decodes each member of `data` itself (no fallback) and finds where it ends.
    fn fast_path_ends(data: &[u8]) -> (Vec<usize>, Vec<u8>) {
        let zero_tail = data.len() - data.iter().rev().take_while(|&&c| c == 0).count();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| out.extend_from_slice(b);
        let mut b = Blocks::new(4096, false, &|_, _| true, &mut sink);
        let (mut ends, mut pos) = (Vec::new(), 0);
        while pos < zero_tail {
            match member(data, pos, zero_tail, &mut b, &mut |_| {}) {
                Member::Done(end) => ends.push(end),
                Member::Fallback { emitted, .. } => panic!("fallback at {pos} after {emitted} bytes"),
            }
            pos = *ends.last().unwrap();
        }
        b.flush();
        (ends, out)
    }

    #[test]
    fn clean_members_end_where_they_end_on_the_fast_path() {
        let (a, b) = (lines(20_000, 1), lines(300, 2));
        // Stored data holding the gzip magic after a size field out of reach: not a stop.
        let mut c = b"payload \xff\xff\xff\x7f".to_vec();
        c.extend(MAGIC);
        c.extend(lines(50, 3));
        // The last member before the NULs decodes to more than 70 KB: a smaller one may end
        // in NULs that look like a plausible end a byte early, which only costs a fallback.
        let d = lines(3000, 7);
        let parts =
            [gz(&a, 6, Some("access.log")), gz(b"", 1, None), gz(&b, 1, None), gz(&c, 0, None), gz(&d, 1, None)];
        let mut data = parts.concat();
        data.extend([0u8; 37]);
        let (ends, out) = fast_path_ends(&data);
        let want: Vec<usize> = parts
            .iter()
            .scan(0, |s, p| {
                *s += p.len();
                Some(*s)
            })
            .collect();
        assert_eq!(ends, want);
        assert_eq!(out, [a, b, c, d].concat());
        let rep = same(&data, 4096, false);
        assert_eq!((rep.members, rep.problems.len()), (5, 1));
    }

    #[test]
    fn a_magic_that_looks_like_a_member_end_falls_back_to_the_same_result() {
        // Stored data: the magic in the payload follows the size decoded so far, so ISA-L is
        // stopped there, runs dry and hands the member to flate2, which skips its bytes.
        let mut c = lines(2000, 4);
        c.extend((c.len() as u32 + 4).to_le_bytes());
        c.extend(MAGIC);
        c.extend(lines(2000, 5));
        let data = [gz(&c, 0, None), gz(&lines(10, 6), 1, None)].concat();
        let mut sink = |_: &[u8]| {};
        let mut b = Blocks::new(4096, false, &|_, _| true, &mut sink);
        match member(&data, 0, data.len(), &mut b, &mut |_| {}) {
            Member::Fallback { emitted, .. } => assert!(emitted > 0),
            Member::Done(end) => panic!("a member end at {end}"),
        }
        for block in [4096, 65536] {
            let rep = same(&data, block, false);
            assert_eq!((rep.members, rep.problems.len()), (2, 0));
        }
    }

    #[test]
    fn headers_zlib_would_judge_otherwise_go_to_flate2() {
        let m = gz(b"x\n", 1, Some("n"));
        assert!(header_is_plain(&m));
        let mut reserved = m.clone();
        reserved[3] |= 0x20;
        assert!(!header_is_plain(&reserved));
        let mut hcrc = m.clone();
        hcrc[3] |= 0x02;
        assert!(!header_is_plain(&hcrc));
        assert!(!header_is_plain(&m[..11]));
        let long = gz(b"x\n", 1, Some(&"n".repeat(70_000)));
        assert!(!header_is_plain(&long));
        for d in [reserved, long, hcrc] {
            same(&d, 4096, false);
        }
    }

    /// Every input that once made the `gzip` fuzz target fail (`fuzz/regressions/gzip`: the
    /// target's first byte picks the block size and the multi-line rule, the rest is the file).
    #[test]
    fn fuzz_regressions_agree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/gzip");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let input = std::fs::read(e.unwrap().path()).unwrap();
            let Some((&first, data)) = input.split_first() else { continue };
            same(data, 4096 << (first & 3), first & 4 != 0);
            n += 1;
        }
        assert!(n > 0, "no regression inputs in {}", dir.display());
    }

    /// A damage applied to a concatenation of members.
    #[derive(Debug, Clone)]
    enum Damage {
        None,
        Truncate(usize),
        Xor { at: usize, len: usize, mask: u8 },
        Insert { at: usize, bytes: Vec<u8> },
        Append(Vec<u8>),
        Reserved(usize),
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            Just(Damage::None),
            any::<usize>().prop_map(Damage::Truncate),
            (any::<usize>(), 1usize..80, 1u8..=255).prop_map(|(at, len, mask)| Damage::Xor { at, len, mask }),
            (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..40))
                .prop_map(|(at, bytes)| Damage::Insert { at, bytes }),
            prop_oneof![
                proptest::collection::vec(Just(0u8), 1..100),
                proptest::collection::vec(any::<u8>(), 1..100),
                Just(MAGIC.to_vec()),
            ]
            .prop_map(Damage::Append),
            any::<usize>().prop_map(Damage::Reserved),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        /// Random members (levels 0-9, names, empty ones, payloads holding the gzip magic),
        /// damaged in one way, at several block sizes: ISA-L's blocks and report are zlib-rs's.
        #[test]
        fn isal_and_zlib_rs_agree(
            members in proptest::collection::vec((0usize..3000, any::<u64>(), 0u32..10, any::<bool>(), any::<bool>()), 1..4),
            dmg in damage(),
            block in prop_oneof![Just(4096usize), Just(8192), Just(1 << 16)],
            multiline in any::<bool>(),
        ) {
            let mut starts = Vec::new();
            let mut data = Vec::new();
            for &(n, seed, level, name, magic) in &members {
                let mut payload = lines(n, seed);
                if magic {
                    // After a size field that is plausible (the size so far) or small.
                    let at = (seed as usize) % (payload.len() + 1);
                    let size = if seed & 1 == 0 { at as u32 + 4 } else { seed as u32 % 64 };
                    let mut m = size.to_le_bytes().to_vec();
                    m.extend(MAGIC);
                    payload.splice(at..at, m);
                }
                starts.push(data.len());
                data.extend(gz(&payload, level, name.then_some("f.log")));
            }
            let len = data.len();
            match dmg {
                Damage::None => {}
                Damage::Truncate(k) => data.truncate(k % len),
                Damage::Xor { at, len: n, mask } => {
                    let at = at % len;
                    for x in &mut data[at..(at + n).min(len)] {
                        *x ^= mask;
                    }
                }
                Damage::Insert { at, bytes } => {
                    let at = at % (len + 1);
                    data.splice(at..at, bytes);
                }
                Damage::Append(bytes) => data.extend(bytes),
                Damage::Reserved(i) => data[starts[i % starts.len()] + 3] |= 0x40,
            }
            same(&data, block, multiline);
        }
    }
}
