//! CSV output: small tables through polars' writer, `errors.csv` and `fpm.csv` streamed row
//! by row in the bytes polars' writer gives the same table.
//!
//! Input: a sorted frame. Output: a UTF-8 CSV file with a header row, `,` separators,
//! quoting only where needed, empty fields for missing values, `\n` line ends.
//! Invariant: written atomically (temp file + rename).

use super::{io_err, table_err, RenderError};
use crate::aggregate::events::Events;
use crate::aggregate::quiet::{Keyed, Quiet, Row};
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

/// The columns of `fpm.csv` (`aggregate::report::fpm_table`) and the event column each
/// comes from.
pub const FPM_CSV: [(&str, &str); 15] = [
    ("time", "time"),
    ("file", "file"),
    ("line", "line"),
    ("level", "level"),
    ("pool", "pool"),
    ("event", "event"),
    ("child_pid", "child_pid"),
    ("signal", "signal"),
    ("exit_code", "exit_code"),
    ("script", "script"),
    ("request", "request"),
    ("elapsed_s", "elapsed_s"),
    ("message", "message"),
    ("time_exact", "time_exact"),
    ("machine", "machine"),
];

/// A held-frame column, typed.
enum Held {
    Str(StringChunked),
    Int(Int64Chunked),
    Float(Float64Chunked),
    YesNo(BooleanChunked),
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The columns `cols` (their event columns) of a kind's held frame `d`, one chunk each.
fn held_columns(d: &DataFrame, cols: &[(&str, &str)]) -> PolarsResult<Vec<Held>> {
    cols.iter()
        .map(|(_, c)| -> PolarsResult<Held> {
            let col = d.column(c)?;
            Ok(match col.dtype() {
                DataType::String => Held::Str(col.str()?.rechunk().into_owned()),
                DataType::Boolean => Held::YesNo(col.bool()?.rechunk().into_owned()),
                DataType::Float64 => Held::Float(col.f64()?.rechunk().into_owned()),
                _ => Held::Int(col.cast(&DataType::Int64)?.i64()?.rechunk().into_owned()),
            })
        })
        .collect()
}

/// Row `i` of the held columns, as polars' writer writes it.
fn put_held(buf: &mut Vec<u8>, held: &[Held], i: usize) {
    for (k, h) in held.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        match h {
            Held::Str(c) => put_str(buf, c.get(i)),
            Held::Int(c) => put_int(buf, c.get(i)),
            Held::Float(c) => put_f64(buf, c.get(i)),
            Held::YesNo(c) => put_str(buf, c.get(i).map(yes_no)),
        }
    }
}

/// A float as polars' writer writes one without a set precision (`zmij`'s shortest text).
fn put_f64(buf: &mut Vec<u8>, v: Option<f64>) {
    if let Some(v) = v {
        buf.extend_from_slice(zmij::Buffer::new().format(v).as_bytes());
    }
}

/// A CSV file written row by row: into a temporary file beside it, renamed at the end.
struct Streamed {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    w: std::io::BufWriter<std::fs::File>,
    /// The rows not yet written.
    buf: Vec<u8>,
}

impl Streamed {
    fn create(path: &Path, cols: &[(&str, &str)]) -> Result<Streamed, RenderError> {
        let tmp = path.with_extension("tmp~");
        let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(cols.iter().map(|c| c.0).collect::<Vec<_>>().join(",").as_bytes());
        buf.push(b'\n');
        let w = std::io::BufWriter::with_capacity(1 << 16, f);
        Ok(Streamed { tmp, path: path.to_path_buf(), w, buf })
    }

    /// End the row written into `buf`.
    fn end_row(&mut self) -> Result<(), RenderError> {
        self.buf.push(b'\n');
        if self.buf.len() >= 1 << 16 {
            std::io::Write::write_all(&mut self.w, &self.buf).map_err(io_err(&self.tmp))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), RenderError> {
        std::io::Write::write_all(&mut self.w, &self.buf).map_err(io_err(&self.tmp))?;
        std::io::Write::flush(&mut self.w).map_err(io_err(&self.tmp))?;
        drop(self.w);
        std::fs::rename(&self.tmp, &self.path).map_err(io_err(&self.path))
    }
}

/// A field and its separator.
fn str_field(buf: &mut Vec<u8>, v: Option<&str>) {
    put_str(buf, v);
    buf.push(b',');
}

fn int_field(buf: &mut Vec<u8>, v: Option<i64>) {
    put_int(buf, v);
    buf.push(b',');
}

/// A kind's table streamed row by row, in the order of `rows`: a held row from columns `cols`
/// of its frame `d`, a quiet row's time, file and line here and its other fields by `rest`.
/// Only the rows of one write buffer are in memory.
fn stream<T: Keyed>(
    ev: &Events,
    path: &Path,
    cols: &[(&str, &str)],
    d: &DataFrame,
    rows: impl Iterator<Item = Row<T>>,
    rest: impl Fn(&mut Vec<u8>, &Quiet, &T),
) -> Result<(), RenderError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let held = held_columns(d, cols).map_err(table_err(&name))?;
    let mut out = Streamed::create(path, cols)?;
    let mut stamps = crate::model::time::StampText::default();
    let mut stamp = String::new();
    for r in rows {
        let buf = &mut out.buf;
        match r {
            Row::Held(i) => put_held(buf, &held, i),
            Row::Quiet(e) => {
                let q = ev.quiet.as_deref().expect("quiet rows come from a spill");
                let (ts, src, line) = e.key();
                stamp.clear();
                q.push_time(&mut stamps, ts, &mut stamp);
                str_field(buf, Some(&stamp));
                str_field(buf, Some(q.file(src)));
                int_field(buf, Some(line as i64));
                rest(buf, q, &e);
            }
        }
        out.end_row()?;
    }
    out.finish()
}

/// `errors.csv` streamed row by row: the held error rows (from their frame) merged with the
/// quiet ones read back (`aggregate::quiet::error_rows`), each formatted as polars' writer
/// formats `errors_table` (`tests::fields_are_polars_fields`, and the golden tests for whole
/// files), so no frame is built for the quiet rows and the file's bytes are those of one
/// table of all rows.
pub fn write_errors(ev: &Events, path: &Path) -> Result<(), RenderError> {
    let rows = crate::aggregate::quiet::error_rows(ev).map_err(table_err("errors.csv"))?;
    stream(ev, path, &ERRORS_CSV, &ev.err, rows, |buf, q, e| {
        // A quiet row has no verdict: its cause is its line's, confidence and evidence are
        // empty.
        str_field(buf, Some(e.level.as_str()));
        int_field(buf, Some(e.pid as i64));
        int_field(buf, e.conn.map(|c| c as i64));
        str_field(buf, Some(e.signature));
        int_field(buf, e.errno.map(i64::from));
        str_field(buf, Some(e.phase.as_str()));
        str_field(buf, Some(e.class.as_str()));
        str_field(buf, Some(e.cause.as_str()));
        for v in [e.client, e.server, e.request, e.upstream, e.host, Some(e.message)] {
            str_field(buf, v);
        }
        str_field(buf, Some(e.class.as_str()));
        str_field(buf, Some(yes_no(e.failure)));
        str_field(buf, None);
        str_field(buf, None);
        int_field(buf, Some(e.lines as i64));
        put_str(buf, Some(q.machine(e.source)));
    })
}

/// `fpm.csv` streamed row by row like `errors.csv`: the held FPM rows merged with the quiet
/// ones read back (`aggregate::quiet::fpm_rows`), formatted as polars' writer formats
/// `fpm_table` (`tests::fpm_csv_is_polars_csv_of_the_fpm_table`, the golden tests). Building
/// a frame per batch of the merged rows and handing it to polars' writer cost 7,200
/// instructions a row (0.54 G on the noisy 2 GiB bench corpus, callgrind).
pub fn write_fpm(ev: &Events, path: &Path) -> Result<(), RenderError> {
    let rows = crate::aggregate::quiet::fpm_rows(ev).map_err(table_err("fpm.csv"))?;
    stream(ev, path, &FPM_CSV, &ev.fpm, rows, |buf, q, e| {
        str_field(buf, Some(e.level.as_str()));
        str_field(buf, e.pool.as_deref());
        str_field(buf, Some(e.kind.as_str()));
        int_field(buf, e.child_pid.map(i64::from));
        int_field(buf, e.signal.map(i64::from));
        int_field(buf, e.exit_code.map(i64::from));
        str_field(buf, e.script.as_deref());
        str_field(buf, e.request.as_deref());
        put_f64(buf, e.elapsed_s);
        buf.push(b',');
        str_field(buf, Some(&e.message));
        str_field(buf, Some(yes_no(e.ts_exact)));
        put_str(buf, Some(q.machine(e.source)));
    })
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
        /// Floats as polars' writer writes them (any bits: subnormal, huge, negative zero,
        /// infinite, NaN), nulls empty.
        #[test]
        fn floats_are_polars_floats(bits in prop::collection::vec(prop::option::of(any::<u64>()), 1..40)) {
            let f: Vec<Option<f64>> = bits.iter().map(|b| b.map(f64::from_bits)).collect();
            let mut df = DataFrame::new(f.len(), vec![Column::new("f".into(), f.clone())]).unwrap();
            let mut theirs = Vec::new();
            CsvWriter::new(&mut theirs).include_header(false).with_separator(b',').finish(&mut df).unwrap();
            let mut ours = Vec::new();
            for v in &f {
                put_f64(&mut ours, *v);
                ours.push(b'\n');
            }
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }

    /// `write_fpm` on held rows (a stored run's) writes the bytes polars' writer gives
    /// `fpm_table` of the same frame: floats of every shape, fields that need quotes, empty
    /// strings, nulls of every type, rows out of order and tied on time.
    #[test]
    fn fpm_csv_is_polars_csv_of_the_fpm_table() {
        let wide = df!(
            "record" => ["fpm", "fpm", "fpm", "fpm", "error"],
            "ts_ms" => [3i64, 1, 2, 2, 1],
            "time" => ["t3", "t1", "t2", "t2", "t1"],
            "file" => ["a.log", "a.log", "b.log", "a.log", "e.log"],
            "line" => [3i64, 1, 2, 7, 1],
            "level" => ["notice", "warning", "notice", "error", "error"],
            "pool" => [Some("www"), None, Some("a,b"), Some(""), None],
            "event" => ["child_exited_code", "seems_busy", "child_started", "child_exited_signal", ""],
            "child_pid" => [Some(12i64), None, Some(3), Some(4_000_000_000), None],
            "signal" => [None, None, None, Some(9i64), None],
            "exit_code" => [Some(0i64), None, None, Some(-1), None],
            "script" => [Some("/x.php"), None, Some("q\"uote"), None, None],
            "request" => [None, Some("GET /a?b=1,2"), None, None, None],
            "elapsed_s" => [Some(30.0f64), Some(0.1), None, Some(1e-7), None],
            "message" => ["m1", "line\nbreak", "plain", "x", "e"],
            "time_exact" => [Some(true), Some(false), None, Some(true), None],
            "machine" => ["vm", "vm", "vm", "vm", "vm"],
        )
        .unwrap();
        let ev = Events::from_wide(&wide).unwrap().sort().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fpm.csv");
        write_fpm(&ev, &path).unwrap();
        let mut t = crate::aggregate::report::fpm_table(&ev.fpm).unwrap();
        let mut want = Vec::new();
        CsvWriter::new(&mut want).include_header(true).with_separator(b',').finish(&mut t).unwrap();
        assert_eq!(String::from_utf8(std::fs::read(&path).unwrap()).unwrap(), String::from_utf8(want).unwrap());
        assert_eq!(t.height(), 4);
    }

    /// `ERRORS_CSV` and `FPM_CSV` name the columns of `errors_table` and `fpm_table`, in their
    /// order.
    #[test]
    fn streamed_columns_are_the_tables() {
        use crate::aggregate::events::{column_type, kind_has};
        use crate::aggregate::report::{errors_table, fpm_table};
        use crate::aggregate::run::EVENT_COLUMNS;
        type Table = fn(&DataFrame) -> PolarsResult<DataFrame>;
        type Columns = &'static [(&'static str, &'static str)];
        let tables: [(&str, Table, Columns); 2] = [("error", errors_table, &ERRORS_CSV), ("fpm", fpm_table, &FPM_CSV)];
        for (kind, table, streamed) in tables {
            let cols: Vec<Column> = EVENT_COLUMNS
                .iter()
                .filter(|c| kind_has(kind, c))
                .map(|c| Column::full_null((*c).into(), 0, &column_type(c)))
                .collect();
            let t = table(&DataFrame::new(0, cols).unwrap()).unwrap();
            let names: Vec<&str> = t.get_column_names().iter().map(|n| n.as_str()).collect();
            assert_eq!(names, streamed.iter().map(|c| c.0).collect::<Vec<_>>(), "{kind}");
        }
    }
}
