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
