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

/// One CSV field as polars writes it (`QuoteStyle::Necessary`): nothing for null, `""` for
/// the empty string, quoted with `"` doubled when it holds a separator, a line end or a quote.
fn put_str(buf: &mut Vec<u8>, v: Option<&str>) {
    let Some(s) = v else { return };
    let b = s.as_bytes();
    if b.is_empty() {
        buf.extend_from_slice(b"\"\"");
        return;
    }
    // Most fields are short (a level, a code, an address): a loop over their bytes costs less
    // than a vector search's call (4.9 M fields on the noisy 2 GiB corpus, 210 instructions
    // each with two `memchr` calls); long ones (messages, requests) are read 16 bytes at a
    // time for the four bytes at once, the last 16 overlapping.
    let quote = if b.len() < 16 {
        b.iter().any(|&c| matches!(c, b',' | b'\n' | b'\r' | b'"'))
    } else {
        use wide::u8x16;
        let special = |block: &[u8]| {
            let v = u8x16::new(block.try_into().expect("16 bytes"));
            (v.simd_eq(u8x16::splat(b',')) | v.simd_eq(u8x16::splat(b'\n')))
                | (v.simd_eq(u8x16::splat(b'\r')) | v.simd_eq(u8x16::splat(b'"')))
        };
        b.chunks_exact(16).any(|c| special(c).to_bitmask() != 0) || special(&b[b.len() - 16..]).to_bitmask() != 0
    };
    if !quote {
        buf.extend_from_slice(b);
        return;
    }
    buf.push(b'"');
    let mut from = 0;
    for q in memchr::memchr_iter(b'"', b) {
        buf.extend_from_slice(&b[from..=q]);
        buf.push(b'"');
        from = q + 1;
    }
    buf.extend_from_slice(&b[from..]);
    buf.push(b'"');
}

fn put_int(buf: &mut Vec<u8>, v: Option<i64>) {
    if let Some(v) = v {
        buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

/// The columns of `errors.csv` (`aggregate::report::errors_table`) and the event column
/// each comes from.
pub const ERRORS_CSV: [(&str, &str); 23] = [
    ("time", "time"),
    ("file", "file"),
    ("line", "line"),
    ("level", "level"),
    ("pid", "pid"),
    ("conn", "conn"),
    ("signature", "signature"),
    ("errno", "errno"),
    ("phase", "phase"),
    ("cause_class", "cause_class"),
    ("cause", "cause"),
    ("client", "client"),
    ("server", "server"),
    ("request", "request"),
    ("upstream", "upstream"),
    ("host", "vhost"),
    ("message", "message"),
    ("line_class", "line_class"),
    ("failure", "failure"),
    ("confidence", "confidence"),
    ("evidence", "evidence"),
    ("lines", "entry_lines"),
    ("machine", "machine"),
];

/// A held-frame column, typed.
enum Held {
    Str(StringChunked),
    Int(Int64Chunked),
    YesNo(BooleanChunked),
}

/// `errors.csv` streamed row by row: the held error rows (from their frame) merged with the
/// quiet ones read back (`aggregate::quiet::error_rows`), each formatted as polars' writer
/// formats `errors_table` (`tests::errors_csv_is_polars_csv` checks the two agree), so no
/// frame is built for the quiet rows and the file's bytes are those of one table of all rows.
pub fn write_errors(ev: &crate::aggregate::events::Events, path: &Path) -> Result<(), RenderError> {
    use crate::aggregate::quiet::{error_rows, ErrRow};
    let terr = |e| table_err("errors.csv")(e);
    let d = &ev.err;
    let held = ERRORS_CSV
        .iter()
        .map(|(_, c)| -> PolarsResult<Held> {
            let col = d.column(c)?;
            Ok(match col.dtype() {
                DataType::String => Held::Str(col.str()?.rechunk().into_owned()),
                DataType::Boolean => Held::YesNo(col.bool()?.rechunk().into_owned()),
                _ => Held::Int(col.cast(&DataType::Int64)?.i64()?.rechunk().into_owned()),
            })
        })
        .collect::<PolarsResult<Vec<Held>>>()
        .map_err(terr)?;
    let tmp = path.with_extension("tmp~");
    let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let header: Vec<&str> = ERRORS_CSV.iter().map(|c| c.0).collect();
    buf.extend_from_slice(header.join(",").as_bytes());
    buf.push(b'\n');
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut stamps = crate::model::time::StampText::default();
    let mut stamp = String::new();
    for r in error_rows(ev).map_err(terr)? {
        match r {
            ErrRow::Held(i) => {
                for (k, h) in held.iter().enumerate() {
                    if k > 0 {
                        buf.push(b',');
                    }
                    match h {
                        Held::Str(c) => put_str(&mut buf, c.get(i)),
                        Held::Int(c) => put_int(&mut buf, c.get(i)),
                        Held::YesNo(c) => put_str(&mut buf, c.get(i).map(yes_no)),
                    }
                }
            }
            ErrRow::Quiet(e) => {
                let q = ev.quiet.as_deref().expect("quiet rows come from a spill");
                // A quiet row has no verdict: its cause is its line's, confidence and
                // evidence are empty.
                let s = |buf: &mut Vec<u8>, v: Option<&str>| {
                    put_str(buf, v);
                    buf.push(b',');
                };
                let n = |buf: &mut Vec<u8>, v: Option<i64>| {
                    put_int(buf, v);
                    buf.push(b',');
                };
                stamp.clear();
                q.push_time(&mut stamps, e.ts, &mut stamp);
                s(&mut buf, Some(&stamp));
                s(&mut buf, Some(q.file(e.source)));
                n(&mut buf, Some(e.line as i64));
                s(&mut buf, Some(e.level.as_str()));
                n(&mut buf, Some(e.pid as i64));
                n(&mut buf, e.conn.map(|c| c as i64));
                s(&mut buf, Some(e.signature));
                n(&mut buf, e.errno.map(i64::from));
                s(&mut buf, Some(e.phase.as_str()));
                s(&mut buf, Some(e.class.as_str()));
                s(&mut buf, Some(e.cause.as_str()));
                for v in [e.client, e.server, e.request, e.upstream, e.host, Some(e.message)] {
                    s(&mut buf, v);
                }
                s(&mut buf, Some(e.class.as_str()));
                s(&mut buf, Some(yes_no(e.failure)));
                s(&mut buf, None);
                s(&mut buf, None);
                n(&mut buf, Some(e.lines as i64));
                put_str(&mut buf, Some(q.machine()));
            }
        }
        buf.push(b'\n');
        if buf.len() >= 1 << 16 {
            std::io::Write::write_all(&mut w, &buf).map_err(io_err(&tmp))?;
            buf.clear();
        }
    }
    std::io::Write::write_all(&mut w, &buf).map_err(io_err(&tmp))?;
    std::io::Write::flush(&mut w).map_err(io_err(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Rows per batch of `fpm.csv`.
const FPM_BATCH: usize = 16 << 10;

/// `fpm.csv` a batch at a time: the held FPM rows merged with the quiet ones read back, each
/// batch a frame built in merged order (`aggregate::wide::Groups::fpm`), written by polars'
/// batched writer: the file's bytes are those of one table of all rows
/// (`tests::batches_are_one_table`), and no more than a batch of the quiet rows is ever a
/// frame.
pub fn write_fpm(ev: &crate::aggregate::events::Events, path: &Path) -> Result<(), RenderError> {
    use crate::aggregate::report::fpm_table;
    use crate::aggregate::wide::Groups;
    let terr = |e| table_err("fpm.csv")(e);
    let tmp = path.with_extension("tmp~");
    let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
    let schema = fpm_table(&ev.fpm.clear()).map_err(terr)?.schema().as_ref().clone();
    let mut out = CsvWriter::new(&mut w).include_header(true).with_separator(b',').batched(&schema).map_err(terr)?;
    let mut batches = Groups::fpm(ev, FPM_BATCH).map_err(terr)?;
    while let Some(batch) = batches.next_group().map_err(terr)? {
        if batch.height() == 0 {
            continue;
        }
        out.write_batch(&fpm_table(&batch).map_err(terr)?).map_err(terr)?;
    }
    out.finish().map_err(terr)?;
    drop(out);
    std::io::Write::flush(&mut w).map_err(io_err(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The hand-written fields are polars' fields, for strings with separators, quotes, line
    /// ends, empty strings, nulls and any Unicode, and for integers of any size.
    fn polars_csv(strs: &[Option<String>], ints: &[Option<i64>]) -> Vec<u8> {
        let mut df = DataFrame::new(
            strs.len(),
            vec![Column::new("s".into(), strs.to_vec()), Column::new("i".into(), ints.to_vec())],
        )
        .unwrap();
        let mut out = Vec::new();
        CsvWriter::new(&mut out).include_header(false).with_separator(b',').finish(&mut df).unwrap();
        out
    }

    proptest! {
        #[test]
        fn fields_are_polars_fields(
            cells in prop::collection::vec(
                (prop::option::of("(?s)[ -~\r\n\t\"',é€]{0,40}"), prop::option::of(any::<i64>())),
                1..40,
            )
        ) {
            let (strs, ints): (Vec<Option<String>>, Vec<Option<i64>>) = cells.into_iter().unzip();
            let mut ours = Vec::new();
            for (s, i) in strs.iter().zip(&ints) {
                put_str(&mut ours, s.as_deref());
                ours.push(b',');
                put_int(&mut ours, *i);
                ours.push(b'\n');
            }
            let theirs = polars_csv(&strs, &ints);
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }

    /// A field is quoted when any byte of it is a separator, a quote or a line end, wherever
    /// it is (the 16-byte blocks, the overlapping last one, the byte loop of short fields).
    #[test]
    fn a_special_byte_anywhere_quotes_the_field() {
        for n in 1..=48 {
            let plain = "x".repeat(n);
            let mut out = Vec::new();
            put_str(&mut out, Some(&plain));
            assert_eq!(out, plain.as_bytes(), "{n}");
            for at in 0..n {
                for c in [',', '\n', '\r', '"'] {
                    let mut f = plain.clone().into_bytes();
                    f[at] = c as u8;
                    let f = String::from_utf8(f).unwrap();
                    let mut out = Vec::new();
                    put_str(&mut out, Some(&f));
                    let want = format!("\"{}\"", f.replace('"', "\"\""));
                    assert_eq!(String::from_utf8(out).unwrap(), want, "{n} at {at}");
                }
            }
        }
    }

    proptest! {
        /// `write_fpm`'s batches: polars' batched writer over consecutive slices writes the
        /// bytes its writer gives the whole table (floats of any size and precision, strings
        /// that need quoting, nulls, one header).
        #[test]
        fn batches_are_one_table(
            rows in prop::collection::vec(
                (prop::option::of(any::<f64>()), prop::option::of("[a-z,\"é ]{0,6}"), any::<bool>()),
                0..60,
            ),
            cuts in prop::collection::vec(0usize..60, 0..4),
        ) {
            let n = rows.len();
            let f: Vec<Option<f64>> = rows.iter().map(|r| r.0.filter(|x| x.is_finite())).collect();
            let s: Vec<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
            let b: Vec<bool> = rows.iter().map(|r| r.2).collect();
            let mut df = DataFrame::new(
                n,
                vec![Column::new("f".into(), f), Column::new("s".into(), s), Column::new("b".into(), b)],
            )
            .unwrap();
            let mut whole = Vec::new();
            CsvWriter::new(&mut whole).include_header(true).with_separator(b',').finish(&mut df).unwrap();
            let mut parts = Vec::new();
            let mut w = CsvWriter::new(&mut parts)
                .include_header(true)
                .with_separator(b',')
                .batched(df.schema().as_ref())
                .unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < n).collect();
            cuts.push(n);
            cuts.sort();
            let mut at = 0;
            for c in cuts {
                if c > at {
                    w.write_batch(&df.slice(at as i64, c - at)).unwrap();
                    at = c;
                }
            }
            w.finish().unwrap();
            drop(w);
            prop_assert_eq!(String::from_utf8_lossy(&parts), String::from_utf8_lossy(&whole));
        }
    }

    /// `ERRORS_CSV` names the columns of `errors_table`, in its order.
    #[test]
    fn errors_csv_columns_are_the_errors_table() {
        use crate::aggregate::events::{column_type, kind_has};
        use crate::aggregate::run::EVENT_COLUMNS;
        let cols: Vec<Column> = EVENT_COLUMNS
            .iter()
            .filter(|c| kind_has("error", c))
            .map(|c| Column::full_null((*c).into(), 0, &column_type(c)))
            .collect();
        let t = crate::aggregate::report::errors_table(&DataFrame::new(0, cols).unwrap()).unwrap();
        let names: Vec<&str> = t.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ERRORS_CSV.iter().map(|c| c.0).collect::<Vec<_>>());
    }
}
