//! The crate's one `unsafe` site: memory-mapping a file.
//!
//! Input: an open file that is not written to any more (a rotated or compressed log).
//! Output: a read-only map. Invariant: only `Haystack::open`/`map_path`/`map_file` call this, and only
//! for files that are no longer the live end of a rotation set, or for the run's own
//! temporary files (`scan::quiet`, `aggregate::spill`), complete before they are mapped.

use std::fs::File;
use std::io;

pub fn map(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. The only way its contents
    // can change under us is another process modifying or truncating the file. We map only
    // rotated (`x.log.1`, `x.log-DATE`) and compressed files, which logrotate renames and
    // never writes again; the live file of a set, the one `copytruncate` truncates, is read
    // with positional reads instead (see `Haystack::Positional`). A user who edits a rotated
    // file during a run could still cause SIGBUS; that is documented in the README. The run's
    // temporary files (quiet rows, spilled held frames) are created new (`create_new`, mode
    // 0600: this user only) and unlinked at once, so only this process's handle reaches
    // them; they are written completely before they are mapped.
    let map = unsafe { memmap2::MmapOptions::new().map(file)? };
    // Sequential access per chunk: let the kernel read ahead aggressively.
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(map)
}
