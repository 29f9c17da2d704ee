//! The data page of a dictionary-encoded column of a Parquet file of ours (`events.parquet`,
//! the counter files: the arrays `parquet::few_valued` and `int_dictionary` build), its
//! levels and keys encoded here instead of by polars-parquet's `serialize_keys_range`, which
//! feeds every key through a chain of iterators into a generic run encoder, about a hundred
//! instructions a key: with the definition levels, 1.33 G of the noisy 2 GiB run's 39 G, a
//! fifth of `events.parquet`'s.
//!
//! Input: a `DictionaryArray<u32>` of one row group, its Parquet field and the writer's
//! options. Output: the column's pages, the dictionary page and the statistics from
//! polars-parquet's own writer (called for the array's first row: the dictionary page holds
//! every value whatever rows are written), the data page built here. Invariants: the bytes are
//! polars-parquet 0.55's: `hybrid` is its `hybrid_rle::encode` step for step (the same runs
//! and the same stale values in a short last pack; `tests` compare the two on random
//! sequences), the header its `build_plain_page`'s with the whole array's counts; anything
//! that would not be one version-1 data page goes back to the writer (`None`).

use polars::prelude::PolarsResult;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_arrow::types::NativeType;
use polars_buffer::Buffer;
use polars_parquet::parquet::encoding::bitpacked::encode_pack;
use polars_parquet::parquet::encoding::uleb128;
use polars_parquet::parquet::page::{DataPage, DataPageHeader};
use polars_parquet::parquet::schema::Repetition;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{array_to_columns, Encoding, Page, ParquetType, WriteOptions};

/// Values a literal run holds at most (polars-parquet's `MAX_VALUES_PER_LITERAL_RUN`).
const MAX_LITERAL: usize = 8192;

/// Rows of u32 keys polars-parquet puts in one page at its default 1 MiB page size
/// (`row_slice_ranges`: 1 MiB / 5 bytes a row), with room: a longer array, or a set page
/// size, goes the writer's own way.
const ONE_PAGE_ROWS: usize = 200_000;

/// The pages of `d` (its field `field`, encodings `enc`) as polars-parquet writes them, or
/// None where the writer's own path must decide.
pub(super) fn dictionary_pages(
    d: &Dict,
    field: &ParquetType,
    options: WriteOptions,
    enc: &[Encoding],
) -> PolarsResult<Option<Vec<Page>>> {
    let ParquetType::PrimitiveType(pt) = field else { return Ok(None) };
    let n = d.len();
    if !(2..=ONE_PAGE_ROWS).contains(&n) || options.data_page_size.is_some() || d.values.validity().is_some() {
        return Ok(None);
    }
    // The dictionary page, and the data page's header, from the writer itself: its first
    // row's page differs from the whole array's only in its counts.
    let Some(head) = d.head() else { return Ok(None) };
    let mut cols = array_to_columns(&head as &dyn Array, field.clone(), options, enc)?;
    let Some(col) = cols.pop().filter(|_| cols.is_empty()) else { return Ok(None) };
    let pages = col.collect::<PolarsResult<Vec<Page>>>()?;
    let Ok([Page::Dict(dict), Page::Data(first)]) = <[Page; 2]>::try_from(pages) else { return Ok(None) };
    let DataPageHeader::V1(mut header) = first.header().clone() else { return Ok(None) };
    header.num_values = i32::try_from(n).expect("at most ONE_PAGE_ROWS");
    if let Some(s) = &mut header.statistics {
        s.null_count = Some(d.null_count() as i64);
    }
    let validity = d.validity.as_ref();
    let mut buf = Vec::with_capacity(n + 64);
    if pt.field_info.repetition != Repetition::Required {
        // Version 1: the levels' length first (`write_def_levels`).
        buf.extend([0u8; 4]);
        match validity {
            None => bool_run(&mut buf, n, true, 1),
            Some(v) => hybrid(&mut buf, &v.iter().collect::<Vec<bool>>(), 1, bool_literal, bool_run),
        }
        let len = (buf.len() - 4) as u32;
        buf[..4].copy_from_slice(&len.to_le_bytes());
    }
    // The keys of valid rows only (`serialize_keys_values`), at the width of the largest.
    let all = d.keys.as_slice();
    let valid: Vec<u32>;
    let keys = match validity {
        None => all,
        Some(v) => {
            valid = all.iter().zip(v.iter()).filter_map(|(k, ok)| ok.then_some(*k)).collect();
            &valid
        }
    };
    let bits = 32 - keys.iter().max().copied().unwrap_or(0).leading_zeros();
    buf.push(bits as u8);
    hybrid(&mut buf, keys, bits, u32_literal, u32_run);
    let data = DataPage::new(DataPageHeader::V1(header), CowBuffer::Owned(buf), first.descriptor.clone(), n);
    Ok(Some(vec![Page::Dict(dict), Page::Data(data)]))
}

/// A column as the dictionary array the writer would make of it: keys (a null row's key
/// unwritten), their validity and the values. A `DictionaryArray<u32>` holds the same, but
/// making one checks every key against the values (`try_new`: 28 M instructions of the
/// counter files' 635 M on the 256 MB noisy corpus), so one is made only of the first row
/// (`head`, for the writer's dictionary page) or where the writer's own path takes the column
/// (`array`). The keys are in range by construction (`int_dictionary`, `few_valued`).
pub(super) struct Dict {
    keys: Buffer<u32>,
    validity: Option<Bitmap>,
    values: Box<dyn Array>,
}

impl Dict {
    /// `validity` (when given) is as long as `keys`; every key indexes `values`.
    pub(super) fn new(keys: Vec<u32>, validity: Option<Bitmap>, values: Box<dyn Array>) -> Self {
        Dict { keys: keys.into(), validity, values }
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn null_count(&self) -> usize {
        self.validity.as_ref().map_or(0, |v| v.unset_bits())
    }

    #[cfg(test)]
    pub(super) fn values(&self) -> &dyn Array {
        self.values.as_ref()
    }

    /// The rows `offset..offset + len` as a dictionary array (every value kept).
    fn slice(&self, offset: usize, len: usize) -> Option<DictionaryArray<u32>> {
        let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(self.values.dtype().clone()), false);
        let validity = self.validity.clone().map(|v| v.sliced(offset, len));
        let keys = PrimitiveArray::new(ArrowDataType::UInt32, self.keys.clone().sliced(offset..offset + len), validity);
        DictionaryArray::try_new(dtype, keys, self.values.clone()).ok()
    }

    fn head(&self) -> Option<DictionaryArray<u32>> {
        (!self.keys.is_empty()).then(|| self.slice(0, 1)).flatten()
    }

    /// The whole column as a dictionary array, for the writer's own path.
    pub(super) fn array(&self) -> Option<DictionaryArray<u32>> {
        self.slice(0, self.len())
    }
}

/// An integer type polars-parquet's writer may dictionary-encode by its values' range
/// (`min_max_integer_encode_as_dictionary_optional`), with that function's threshold: a
/// column of at most so many distinct values is always worth a dictionary.
pub(super) trait IntKey: NativeType + Ord {
    const DELTA: usize;
    fn wide(self) -> i128;
    fn from_wide(v: i128) -> Self;
    /// `self - lo` for `lo <= self` (at most 65,535 apart here), in the type's own unsigned
    /// arithmetic (`wide`'s 128-bit subtraction and the clamp before it were most of the
    /// keys' loop).
    fn above(self, lo: Self) -> usize;
}

macro_rules! int_key {
    ($($t:ty, $u:ty => $delta:literal),+) => {$(
        impl IntKey for $t {
            const DELTA: usize = $delta;
            fn wide(self) -> i128 {
                self as i128
            }
            fn from_wide(v: i128) -> Self {
                v as $t
            }
            #[inline(always)]
            fn above(self, lo: Self) -> usize {
                (self as $u).wrapping_sub(lo as $u) as usize
            }
        }
    )+};
}
int_key!(i32, u32 => 512, u32, u32 => 512, i64, u64 => 2048, u64, u64 => 2048);

/// The dictionary array polars-parquet's writer makes of integer column `a` when the range of
/// its values is at most 65,536 wide and its distinct values are few (`IntKey::DELTA`) or
/// under 0.75 of its rows: the distinct values ascending, a row's key its value's rank (a
/// null row's key that of its value clamped to the range; not written). None otherwise,
/// where the writer decides for itself (plain pages, or a cardinality estimate).
pub(super) fn int_dictionary<T: IntKey>(a: &PrimitiveArray<T>) -> Option<Dict> {
    let vals = a.values().as_slice();
    let nulls = a.validity().filter(|v| v.unset_bits() > 0);
    // Without nulls (every counter column; in `events.parquet` only the columns every kind
    // fills) each pass is a plain loop over the values: the range without an `Option` per
    // value, the keys without a clamp.
    let (min, max) = match nulls {
        None => vals.iter().fold((*vals.first()?, *vals.first()?), |(lo, hi), v| (lo.min(*v), hi.max(*v))),
        Some(_) => {
            let mut range: Option<(T, T)> = None;
            each_valid(vals, nulls, |v| match &mut range {
                Some((lo, hi)) => {
                    *lo = v.min(*lo);
                    *hi = v.max(*hi);
                }
                None => range = Some((v, v)),
            });
            range?
        }
    };
    let diff = usize::try_from(max.wide() - min.wide()).ok().filter(|d| *d <= usize::from(u16::MAX))?;
    let lo = min.wide();
    let mut seen = vec![false; diff + 1];
    each_valid(vals, nulls, |v| seen[v.above(min)] = true);
    let distinct = seen.iter().filter(|s| **s).count();
    if !(distinct <= T::DELTA || (distinct as f64) / (a.len() as f64) < 0.75) {
        return None;
    }
    let values: Vec<T> = seen.iter().enumerate().filter(|s| *s.1).map(|(o, _)| T::from_wide(lo + o as i128)).collect();
    // Every value of the range present (counts, mostly): a value's rank is its distance from
    // the least, a subtraction the compiler vectorises; otherwise a table of ranks.
    let keys: Vec<u32> = if nulls.is_none() && distinct == diff + 1 {
        vals.iter().map(|v| v.above(min) as u32).collect()
    } else {
        let mut lookup = vec![0u16; diff + 1];
        for (rank, (o, _)) in seen.iter().enumerate().filter(|s| *s.1).enumerate() {
            lookup[o] = rank as u16;
        }
        match nulls {
            None => vals.iter().map(|v| u32::from(lookup[v.above(min)])).collect(),
            Some(_) => vals.iter().map(|v| u32::from(lookup[v.clamp(&min, &max).above(min)])).collect(),
        }
    };
    let values = PrimitiveArray::new(ArrowDataType::from(T::PRIMITIVE), values.into(), None).boxed();
    Some(Dict::new(keys, a.validity().cloned(), values))
}

/// `f` of each value of `vals` not null in `nulls`.
#[inline(always)]
fn each_valid<T: Copy>(vals: &[T], nulls: Option<&Bitmap>, mut f: impl FnMut(T)) {
    match nulls {
        None => vals.iter().for_each(|v| f(*v)),
        Some(b) => vals.iter().zip(b.iter()).filter(|x| x.1).for_each(|(v, _)| f(*v)),
    }
}

/// `vals` in Parquet's RLE / bit-packing hybrid as polars-parquet's `hybrid_rle::encode`
/// writes it: a run of more than 8 equal values (once the literal values before it are a
/// multiple of 8) is a repeated run, the rest literal runs of at most `MAX_LITERAL` values.
/// Its buffer of literal values is always a stretch of `vals` (from `start`): values are
/// buffered until a repeated run ends or the buffer is full, and a repeated run's values past
/// its ninth are never buffered, so the port keeps indices instead of copies, and skips a
/// repeated run in one loop where the original took a value at a time.
fn hybrid<T: Copy + PartialEq + Default>(
    w: &mut Vec<u8>,
    vals: &[T],
    bits: u32,
    literal: fn(&mut Vec<u8>, &[T], u32),
    run: fn(&mut Vec<u8>, usize, T, u32),
) {
    // The original's names: consecutive_repeats, previous_val, buffer_idx, literal_run_idx.
    let (mut repeats, mut prev, mut idx, mut lit) = (0usize, T::default(), 0usize, 0usize);
    let mut start = 0usize;
    let mut i = 0;
    while i < vals.len() {
        if repeats < 7 && idx > 0 && idx < MAX_LITERAL {
            // Inside a literal stretch, until a value makes seven equal ones in a row or the
            // buffer is full, a value only moves the counters (the original's steps for it, in
            // a loop of their own: half the instructions a value of a literal stretch).
            // The buffer holds `vals[start..i]`: `idx` is `i - start` throughout.
            let end = vals.len().min(start + MAX_LITERAL);
            while i < end && repeats < 7 {
                let v = vals[i];
                if v == prev {
                    repeats += 1;
                } else {
                    lit = i - start;
                    repeats = 1;
                    prev = v;
                }
                i += 1;
            }
            idx = i - start;
            continue;
        }
        let v = vals[i];
        if v == prev {
            repeats += 1;
            if repeats > 8 {
                // The original's `continue` for each further equal value.
                let more = vals[i + 1..].iter().take_while(|x| **x == prev).count();
                repeats += more;
                i += 1 + more;
                continue;
            }
            if repeats == 8 {
                let pad = (8 - lit % 8) % 8;
                repeats -= pad;
                lit += pad;
            }
        } else if repeats > 8 {
            if lit > 0 {
                literal(w, &vals[start..start + lit], bits);
                lit = 0;
            }
            run(w, repeats, prev, bits);
            repeats = 1;
            idx = 0;
        } else {
            lit = idx;
            repeats = 1;
        }
        if idx == MAX_LITERAL {
            literal(w, &vals[start..start + MAX_LITERAL], bits);
            repeats = 1;
            idx = 0;
            lit = 0;
        }
        if idx == 0 {
            start = i;
        }
        prev = v;
        idx += 1;
        i += 1;
    }
    if repeats <= 8 {
        lit = idx;
    }
    if lit > 0 {
        literal(w, &vals[start..start + lit], bits);
    }
    if repeats > 8 {
        run(w, repeats, prev, bits);
    }
}

fn uleb128(w: &mut Vec<u8>, v: u64) {
    let mut c = [0u8; 10];
    let n = uleb128::encode(v, &mut c);
    w.extend_from_slice(&c[..n]);
}

/// A literal run header: the run's groups of 8, then the bit-packed flag.
fn literal_header(w: &mut Vec<u8>, len: usize) {
    uleb128(w, ((len.div_ceil(8) as u64) << 1) | 1);
}

/// A literal run of keys, packed 32 at a time. A short last pack carries the previous pack's
/// values past its own (the original reuses its buffer): in the bytes written when the run
/// is not a multiple of 8 long, so kept. Not polars-parquet's own `hybrid_rle::Encoder`
/// writers (the same bytes, fed through iterators): with them for keys and runs the 256 MB
/// noisy run took 20 M instructions more (5.884 to 5.904 G).
fn u32_literal(w: &mut Vec<u8>, vals: &[u32], bits: u32) {
    literal_header(w, vals.len());
    let bits = bits as usize;
    let mut buf = [0u32; 32];
    let chunks = vals.chunks_exact(32);
    let rest = chunks.remainder();
    for c in chunks {
        buf.copy_from_slice(c);
        let mut packed = [0u8; 128];
        encode_pack(&buf, bits, &mut packed);
        w.extend_from_slice(&packed[..4 * bits]);
    }
    if !rest.is_empty() {
        buf[..rest.len()].copy_from_slice(rest);
        let mut packed = [0u8; 128];
        encode_pack(&buf, bits, &mut packed);
        w.extend_from_slice(&packed[..rest.len().div_ceil(8) * bits]);
    }
}

fn u32_run(w: &mut Vec<u8>, len: usize, v: u32, bits: u32) {
    uleb128(w, (len as u64) << 1);
    w.extend_from_slice(&v.to_le_bytes()[..(bits as usize).div_ceil(8)]);
}

/// A literal run of levels, 8 to a byte, the first in the lowest bit.
fn bool_literal(w: &mut Vec<u8>, vals: &[bool], _bits: u32) {
    literal_header(w, vals.len());
    // Not polars-parquet's `bitpacked_encode` (the same bytes): a bit at a time through an
    // iterator, it made the 256 MB noisy run 19 M instructions longer.
    w.extend(vals.chunks(8).map(|c| c.iter().rev().fold(0u8, |b, v| (b << 1) | u8::from(*v))));
}

fn bool_run(w: &mut Vec<u8>, len: usize, v: bool, _bits: u32) {
    uleb128(w, (len as u64) << 1);
    w.push(u8::from(v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_parquet::parquet::encoding::hybrid_rle::encode;
    use proptest::prelude::*;

    /// Stretches of random lengths (mostly short, some past a literal run's 8,192 values),
    /// each one value repeated or values counting up (literal), below `1 << bits`.
    fn runs(bits: u32) -> impl Strategy<Value = Vec<u32>> {
        let len = prop_oneof![6 => 1usize..12, 2 => 12usize..40, 1 => 8_000usize..9_000];
        let mask = if bits == 0 { 0 } else { u32::MAX >> (32 - bits) };
        proptest::collection::vec((any::<u32>(), len, any::<bool>()), 0..40).prop_map(move |rs| {
            rs.into_iter()
                .flat_map(|(v, n, counting)| {
                    (0..n as u32).map(move |i| (if counting { v.wrapping_add(i) } else { v }) & mask)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The port writes polars-parquet's bytes for keys of every width (0 to 20 bits).
        #[test]
        fn keys_encode_as_polars_does((bits, vals) in (0u32..21).prop_flat_map(|b| (Just(b), runs(b)))) {
            let mut ours = Vec::new();
            hybrid(&mut ours, &vals, bits, u32_literal, u32_run);
            let mut theirs = Vec::new();
            encode::<u32, _, _>(&mut theirs, vals.iter().copied(), bits).unwrap();
            prop_assert_eq!(ours, theirs);
        }

        /// And for levels (validity bits).
        #[test]
        fn levels_encode_as_polars_does(vals in runs(1)) {
            let bools: Vec<bool> = vals.iter().map(|v| *v == 1).collect();
            let mut ours = Vec::new();
            hybrid(&mut ours, &bools, 1, bool_literal, bool_run);
            let mut theirs = Vec::new();
            encode::<bool, _, _>(&mut theirs, bools.iter().copied(), 1).unwrap();
            prop_assert_eq!(ours, theirs);
        }
    }
}
