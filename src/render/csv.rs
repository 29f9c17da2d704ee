//! CSV output through polars' writer.
//!
//! Input: a sorted frame. Output: a UTF-8 CSV file with a header row, `,` separators,
//! quoting only where needed, empty fields for missing values, `\n` line ends.
//! Invariant: written atomically (temp file + rename).

use super::{io_err, table_err, RenderError};
use polars::prelude::*;
use std::path::Path;

/// Stream the CSV into a temp file next to `path`, then rename: building it in memory first
/// held a copy of the largest table (15 MB for errors.csv of the 2 GiB bench) at the peak.
pub fn write(df: &mut DataFrame, path: &Path) -> Result<(), RenderError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_extension("tmp~");
    let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    CsvWriter::new(&mut w).include_header(true).with_separator(b',').finish(df).map_err(table_err(&name))?;
    std::io::Write::flush(&mut w).map_err(io_err(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Stream frames of one table into the CSV file `path` (header from the first frame, or from
/// `empty` when there is none), atomically: the table is never whole in memory, and its bytes
/// are those of `write` on the frames stacked (a CSV row depends on its own values only).
pub fn write_frames(
    empty: &DataFrame,
    frames: impl Iterator<Item = PolarsResult<DataFrame>>,
    path: &Path,
) -> Result<(), RenderError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_extension("tmp~");
    let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    {
        let mut b = CsvWriter::new(&mut w)
            .include_header(true)
            .with_separator(b',')
            .batched(empty.schema())
            .map_err(table_err(&name))?;
        for df in frames {
            let mut df = df.map_err(table_err(&name))?;
            // The batched writer needs every column in the same chunks.
            df.align_chunks();
            b.write_batch(&df).map_err(table_err(&name))?;
        }
        b.finish().map_err(table_err(&name))?;
    }
    std::io::Write::flush(&mut w).map_err(io_err(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}
