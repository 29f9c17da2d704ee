//! The gzip reader: any bytes, any block size. It must not panic, must hand over
//! record-aligned blocks whose total is the decoded size it reports, and on a clean stream must
//! give exactly what flate2's reference multi-member decoder gives. Built with feature `isal`
//! (`fuzz/run.sh` does when ISA-L's build tools are there), ISA-L must give the same blocks
//! and the same report as zlib-rs on every input, damaged ones included.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Read;
use upcause::open::gzip::{self, Inflater, Report};
use upcause::parse::nginx_error;

fn decode(inflater: Inflater, data: &[u8], block: usize, multiline: bool) -> (Vec<Vec<u8>>, Report) {
    let mut blocks = Vec::new();
    let report = gzip::decode_blocks_with(
        inflater,
        data,
        block,
        multiline,
        &|_, l| nginx_error::is_entry_start(l),
        &mut |b: &[u8]| blocks.push(b.to_vec()),
        &mut |_| {},
    );
    (blocks, report)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // First byte picks the block size (4 KiB .. 64 KiB) and whether records are multi-line.
    let block = 4096 << (data[0] & 3);
    let multiline = data[0] & 4 != 0;
    let data = &data[1..];
    let (blocks, report) = decode(Inflater::ZlibRs, data, block, multiline);
    let out = blocks.concat();
    assert_eq!(report.decoded, out.len() as u64, "blocks add up to the decoded size");
    if report.problems.is_empty() && gzip::is_gzip(data) {
        let mut want = Vec::new();
        if flate2::read::MultiGzDecoder::new(data).read_to_end(&mut want).is_ok() {
            assert_eq!(out, want, "same bytes as flate2's MultiGzDecoder");
        }
    }
    for &other in &Inflater::ALL[1..] {
        let (b, r) = decode(other, data, block, multiline);
        assert_eq!(r, report, "{} report differs from zlib-rs", other.name());
        assert!(b == blocks, "{} blocks differ from zlib-rs", other.name());
    }
});
