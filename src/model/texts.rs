//! The strings of one held row in one allocation, and the texts many rows share.
//!
//! Input: up to `N` optional strings. Output: `Texts<N>`, which gives each back as
//! `Option<&str>`; `Interner`, which gives one `Arc<str>` per distinct text it is asked for. Invariants: string `i` is `buf[ends[i-1]..ends[i]]` (from 0 for the first);
//! `some` has bit `i` set when string `i` is present (a present empty string and an absent one
//! differ); the buffer is exactly as long as the strings.
//!
//! Why: a failing request held from the scan to the end of the run had eight `Option<String>`
//! fields (24 bytes each, and an allocation each, rounded up to the allocator's size class),
//! an nginx error line seven; at 8 GiB of logs 160 k of each are held at once (README,
//! Performance). One exact allocation and a `u32` per string is about half of that.

/// `b` as text, invalid UTF-8 replaced: exactly `String::from_utf8_lossy`, with valid input
/// (almost every log line) checked by `str::from_utf8`, which reads ASCII a word at a time;
/// `from_utf8_lossy` walks every byte (`Utf8Chunks`), 1.2% of a noisy run's instructions
/// for the error log's messages and the FPM log's texts.
#[inline]
pub fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// Methods that read a row's `texts` by name, one per string, in the order the row's
/// constructor passes them: `text_fields!(client = 0, server = 1)` in an `impl` gives
/// `fn client(&self) -> Option<&str>` and `fn server(&self)`.
macro_rules! text_fields {
    ($($(#[$doc:meta])* $name:ident = $i:literal),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> Option<&str> {
                self.texts.get($i)
            }
        )*
    };
}
pub(crate) use text_fields;

/// `N` optional strings in one allocation (`N` at most 16).
#[derive(Clone, PartialEq, Eq)]
pub struct Texts<const N: usize> {
    buf: Box<str>,
    ends: [u32; N],
    some: u16,
}

impl<const N: usize> Texts<N> {
    /// The strings, in order (`None` for an absent one). A row's strings are a few kilobytes at
    /// most; past 4 GiB in all (impossible for one log entry) the later ones are cut to
    /// nothing rather than wrapping.
    pub fn new(vals: [Option<&str>; N]) -> Texts<N> {
        const { assert!(N <= 16) };
        let total: usize = vals.iter().map(|v| v.map_or(0, str::len)).sum();
        let mut buf = String::with_capacity(total);
        let mut ends = [0u32; N];
        let mut some = 0u16;
        for (i, v) in vals.iter().enumerate() {
            if let Some(v) = v {
                some |= 1 << i;
                if buf.len() + v.len() <= u32::MAX as usize {
                    buf.push_str(v);
                }
            }
            ends[i] = buf.len() as u32;
        }
        Texts { buf: buf.into_boxed_str(), ends, some }
    }

    /// String `i` (`None` if absent; panics if `i >= N`, a programming error).
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        if self.some & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        // Ends come from `new` over this very buffer, at char boundaries.
        self.buf.get(start..self.ends[i] as usize)
    }
}

/// One shared copy per distinct text, for the long texts that repeat across held rows: an
/// outage writes the same nginx message (`upstream timed out (110: ...) while reading response
/// header from upstream`) thousands of times, and its requests come from a few user agents.
/// Each scan worker keeps its own; past `MAX` distinct texts it starts afresh, so its memory
/// is bounded whatever the input (rows keep their texts either way).
#[derive(Default)]
pub struct Interner {
    set: rustc_hash::FxHashSet<std::sync::Arc<str>>,
}

impl Interner {
    const MAX: usize = 1 << 16;

    pub fn get(&mut self, s: &str) -> std::sync::Arc<str> {
        if let Some(a) = self.set.get(s) {
            return a.clone();
        }
        if self.set.len() >= Self::MAX {
            self.set.clear();
        }
        let a: std::sync::Arc<str> = s.into();
        self.set.insert(a.clone());
        a
    }
}

impl<const N: usize> Default for Texts<N> {
    fn default() -> Texts<N> {
        Texts { buf: Box::default(), ends: [0; N], some: 0 }
    }
}

impl<const N: usize> std::fmt::Debug for Texts<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries((0..N).map(|i| self.get(i))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `lossy` is `String::from_utf8_lossy` on any bytes: ASCII, other UTF-8, broken
        /// sequences, and borrows when nothing is replaced.
        #[test]
        fn lossy_is_from_utf8_lossy(b in proptest::collection::vec(prop::sample::select(vec![b'a', b' ', 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff, 0x80]), 0..64)) {
            let ours = lossy(&b);
            prop_assert_eq!(&ours, &String::from_utf8_lossy(&b));
            prop_assert_eq!(matches!(ours, std::borrow::Cow::Borrowed(_)), std::str::from_utf8(&b).is_ok());
        }
    }

    #[test]
    fn gives_back_each_string_present_absent_or_empty() {
        let t = Texts::new([Some("GET"), None, Some(""), Some("/é?x=1"), None]);
        assert_eq!(t.get(0), Some("GET"));
        assert_eq!(t.get(1), None);
        assert_eq!(t.get(2), Some(""));
        assert_eq!(t.get(3), Some("/é?x=1"));
        assert_eq!(t.get(4), None);
        assert_eq!(&*t.buf, "GET/é?x=1");
        let none = Texts::<3>::new([None, None, None]);
        assert_eq!((none.get(0), none.get(1), none.get(2)), (None, None, None));
        assert_eq!(Texts::<3>::default(), none);
        assert_eq!(format!("{t:?}"), r#"[Some("GET"), None, Some(""), Some("/é?x=1"), None]"#);
        let all = Texts::<16>::new([Some("a"); 16]);
        assert!((0..16).all(|i| all.get(i) == Some("a")));
    }

    #[test]
    fn an_interner_shares_equal_texts_and_stays_bounded() {
        let mut i = Interner::default();
        let (a, b, c) = (i.get("upstream timed out"), i.get("upstream timed out"), i.get("other"));
        assert!(std::sync::Arc::ptr_eq(&a, &b) && !std::sync::Arc::ptr_eq(&a, &c));
        assert_eq!((&*a, &*c), ("upstream timed out", "other"));
        for n in 0..Interner::MAX + 10 {
            assert_eq!(&*i.get(&n.to_string()), n.to_string());
        }
        assert!(i.set.len() <= Interner::MAX);
    }
}
