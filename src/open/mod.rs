//! Opening inputs: plain files as byte ranges (memory-mapped, or read positionally when the
//! file may still be written to), gzip files as streams of whole-record blocks.
//!
//! Input: a `LogSource`. Output: a `Haystack` that hands out line-aligned chunks, or, for
//! gzip, a sequence of decoded blocks that end on record boundaries. Invariants: no whole
//! gzip file is ever decoded into memory; memory per open file is bounded by the chunk or
//! block size (blocks grow only to hold one over-long record, up to `MAX_BLOCK`); every
//! problem becomes an `OpenError` or a diagnostic naming the file and byte offset.

mod blocks;
pub mod gzip;
#[cfg(feature = "isal")]
mod gzip_isal;
mod mmap;
pub mod stream;

use crate::model::{Compression, LogSource};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;

/// Default size of a parallel chunk of a plain file.
pub const CHUNK: usize = 8 << 20;
/// Largest block (one record longer than this is split, with a diagnostic).
pub const MAX_BLOCK: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
}

/// The bytes of a plain file.
pub enum Haystack {
    /// Rotated files: memory-mapped (they are no longer written to).
    Mapped(memmap2::Mmap),
    /// The live file of a rotation set: read with positional reads up to the size seen at
    /// open, so a truncation by logrotate's copytruncate can shorten a read but never raise
    /// SIGBUS (which a mapping would).
    Positional {
        file: File,
        len: u64,
    },
    Empty,
}

impl Haystack {
    pub fn open(src: &LogSource) -> Result<Haystack, OpenError> {
        let file = File::open(&src.path).map_err(|e| OpenError::Open { path: src.display.clone(), source: e })?;
        let len = file.metadata().map_err(|e| OpenError::Read { path: src.display.clone(), source: e })?.len();
        if len == 0 {
            return Ok(Haystack::Empty);
        }
        let live = src.age == 0 && src.compression == Compression::Plain;
        if live {
            return Ok(Haystack::Positional { file, len });
        }
        mmap::map(&file).map(Haystack::Mapped).map_err(|e| OpenError::Read { path: src.display.clone(), source: e })
    }

    /// Map a file regardless of its place in the rotation (gzip input is always mapped:
    /// compressed files are never appended to).
    pub fn map_path(path: &Path, display: &str) -> Result<Haystack, OpenError> {
        let file = File::open(path).map_err(|e| OpenError::Open { path: display.into(), source: e })?;
        Haystack::map_file(&file, display)
    }

    /// Map an open file (the run's own temporary files, unlinked when created: only their
    /// open handle reaches them).
    pub fn map_file(file: &File, display: &str) -> Result<Haystack, OpenError> {
        let len = file.metadata().map_err(|e| OpenError::Read { path: display.into(), source: e })?.len();
        if len == 0 {
            return Ok(Haystack::Empty);
        }
        mmap::map(file).map(Haystack::Mapped).map_err(|e| OpenError::Read { path: display.into(), source: e })
    }

    pub fn len(&self) -> u64 {
        match self {
            Haystack::Mapped(m) => m.len() as u64,
            Haystack::Positional { len, .. } => *len,
            Haystack::Empty => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole content when mapped.
    pub fn mapped(&self) -> Option<&[u8]> {
        match self {
            Haystack::Mapped(m) => Some(m),
            Haystack::Empty => Some(&[]),
            Haystack::Positional { .. } => None,
        }
    }

    /// Bytes of `r`, borrowed from the map or read into `buf` (whose length is kept as a
    /// high-water mark; the returned slice is what was read). A short read (the file was
    /// truncated meanwhile) returns fewer bytes.
    pub fn read<'a>(&'a self, r: Range<u64>, buf: &'a mut Vec<u8>) -> io::Result<&'a [u8]> {
        match self {
            Haystack::Mapped(m) => Ok(&m[r.start as usize..r.end as usize]),
            Haystack::Empty => Ok(&[]),
            Haystack::Positional { file, .. } => {
                use std::os::unix::fs::FileExt;
                let want = (r.end - r.start) as usize;
                // Callers reuse `buf`: zero only what it has never held (zeroing and
                // faulting in a fresh chunk-sized buffer per read was 6% of the
                // instructions of a live-file scan, callgrind).
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                let mut got = 0;
                while got < want {
                    match file.read_at(&mut buf[got..want], r.start + got as u64) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(&buf[..got])
            }
        }
    }

    /// Split into chunks of about `target` bytes that start at record starts
    /// (`is_start`), so no record (multi-line entries included) spans two chunks.
    pub fn plan_chunks(&self, target: usize, is_start: crate::chunk::StartRule) -> io::Result<Vec<Range<u64>>> {
        let len = self.len();
        let mut out = Vec::new();
        let mut start = 0u64;
        let mut buf = Vec::new();
        // Ask for every boundary's first window at once: on files not in the page cache the
        // reads below then wait for requests queued together, not for one disk read after
        // another (the 8 GiB bench corpus after dropping the page cache: this plan 1.5-1.8 s
        // -> 0.03 s, the run 17.3 -> 16.8 s; 2 GiB 4.62 -> 4.49 s; medians of 3). Asking for
        // each task's whole range when it starts gained nothing more.
        if let Haystack::Mapped(m) = self {
            let mut cut = target;
            while (cut as u64) < len {
                let _ = m.advise_range(memmap2::Advice::WillNeed, cut, (64 << 10).min(len as usize - cut));
                cut += target;
            }
        }
        while start < len {
            let mut cut = start + target as u64;
            if cut >= len {
                out.push(start..len);
                break;
            }
            // Look for a record start in growing windows after `cut`.
            let mut window = 64 << 10;
            let mut found = None;
            while found.is_none() {
                let end = (cut + window).min(len);
                let bytes = self.read(cut..end, &mut buf)?;
                found = crate::chunk::next_record_start(bytes, end == len, is_start).map(|p| cut + p as u64);
                if found.is_none() {
                    if end == len {
                        // No record starts before the end: the rest is this chunk's. (Cutting
                        // at a line end here split a multi-line record, so a chunked read
                        // differed from a whole one: found by the `chunk` fuzz target.)
                        found = Some(len);
                    } else if window >= MAX_BLOCK as u64 {
                        // One record longer than MAX_BLOCK: cut at a line end to bound memory
                        // (the record is then read as two; documented).
                        let nl = memchr::memchr(b'\n', bytes).map(|p| cut + p as u64 + 1);
                        found = Some(nl.unwrap_or(end));
                    }
                    window *= 4;
                }
            }
            cut = found.unwrap_or(len);
            if cut > start {
                out.push(start..cut);
            }
            start = cut;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_reads_return_exactly_the_range_with_a_reused_buffer() {
        let dir = std::env::temp_dir().join(format!("upcause-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("live.log");
        let data: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let h = Haystack::Positional { file: File::open(&p).unwrap(), len: data.len() as u64 };
        let mut buf = Vec::new();
        // A long read first, so the buffer is longer than the short reads after it.
        for r in [0..8_000u64, 100..150, 9_990..10_000, 5_000..5_000, 9_000..12_000] {
            let got = h.read(r.clone(), &mut buf).unwrap();
            let end = (r.end as usize).min(data.len());
            assert_eq!(got, &data[r.start as usize..end], "{r:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
