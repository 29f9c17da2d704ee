//! CSV output through polars' writer.
//!
//! Input: a sorted frame. Output: a UTF-8 CSV file with a header row, `,` separators,
//! quoting only where needed, empty fields for missing values, `\n` line ends.
//! Invariant: written atomically (temp file + rename).

use super::{io_err, table_err, write_atomic, RenderError};
use polars::prelude::*;
use std::path::Path;

pub fn to_bytes(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).include_header(true).with_separator(b',').finish(df)?;
    Ok(buf)
}

pub fn write(df: &mut DataFrame, path: &Path) -> Result<(), RenderError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = to_bytes(df).map_err(table_err(&name))?;
    write_atomic(path, &bytes).map_err(|e| match e {
        RenderError::Io { source, .. } => io_err(path)(source),
        other => other,
    })
}
