//! nginx access logs in any `log_format`.
//!
//! Input: a `log_format` string (compiled once into `AccessFormat`), then one line's bytes
//! without its newline. Output: `AccessLine`, the fields as borrowed slices, plus helpers
//! that read numbers, statuses and the `$upstream_*` attempt lists. Invariants: a line
//! either fits the whole format or is rejected (`None`: malformed); no allocation per line;
//! no panic on any bytes.
//!
//! How a variable's value is delimited: by the literal that follows it in the format (nginx
//! escapes `"` inside values, so a quoted value cannot contain its closing quote). Values that
//! may contain the following literal are read by shape instead: `$time_local` is 26 bytes,
//! and the `$upstream_*` lists are items joined by `, ` (next server) and ` : ` (internal
//! redirect), so a list followed by a space is not cut at its first space.

use super::access_json::JsonKeys;
use super::literal::{find_at, list_len, Lit};
pub use super::values::{
    any_attempt_failed, list_items, list_statuses, list_time_total, parse_secs_ms, parse_u16, single,
};

macro_rules! vars {
    ($($var:ident => $name:literal),+ $(,)?) => {
        /// Variables the engine reads; every other `$name` is matched and ignored.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Var { $($var),+, Other }
        impl Var {
            pub(crate) fn from_name(n: &str) -> Var {
                match n {
                    $($name => Var::$var,)+
                    // $upstream_response_length, $upstream_bytes_received, ...: lists too.
                    n if n.starts_with("upstream_") => Var::UpstreamOther,
                    _ => Var::Other,
                }
            }
            /// nginx's name of the variable (`upstream_other` for the other `$upstream_*`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Var::$var => $name,)+
                    Var::Other => "other",
                }
            }
        }
        pub(crate) const NVARS: usize = [$(Var::$var),+].len() + 1;
    };
}

vars! {
    RemoteAddr => "remote_addr",
    RemoteUser => "remote_user",
    TimeLocal => "time_local",
    TimeIso8601 => "time_iso8601",
    Msec => "msec",
    Request => "request",
    RequestMethod => "request_method",
    RequestUri => "request_uri",
    Uri => "uri",
    ServerProtocol => "server_protocol",
    Status => "status",
    BodyBytesSent => "body_bytes_sent",
    BytesSent => "bytes_sent",
    HttpReferer => "http_referer",
    HttpUserAgent => "http_user_agent",
    Host => "host",
    HttpHost => "http_host",
    ServerName => "server_name",
    RequestTime => "request_time",
    UpstreamAddr => "upstream_addr",
    UpstreamStatus => "upstream_status",
    UpstreamResponseTime => "upstream_response_time",
    UpstreamConnectTime => "upstream_connect_time",
    UpstreamHeaderTime => "upstream_header_time",
    RequestId => "request_id",
    UpstreamOther => "\0upstream_other",
}

impl Var {
    fn is_list(self) -> bool {
        matches!(
            self,
            Var::UpstreamAddr
                | Var::UpstreamStatus
                | Var::UpstreamResponseTime
                | Var::UpstreamConnectTime
                | Var::UpstreamHeaderTime
                | Var::UpstreamOther
        )
    }
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(Lit),
    Var(Var),
}

/// One step of `parse_into`: a variable's value up to the literal after it, then that
/// literal; or a literal alone (the format's first, or one following another); or a last
/// variable, the rest of the line. A variable and its literal in one step spare the second
/// compare of a literal that the search has just matched, and the step's decisions (a
/// stamp's fixed width, a list) are made once per format, not per field of every line
/// (`parse_into` with its searches went from 2,104 to 1,263 instructions a line, callgrind,
/// 100 MB of the bench's shop log).
///
/// A literal alone (only a format's first token can be one) stores its empty "value" in
/// `Var::Other`'s slot, which nothing reads and every other store there follows, and
/// the format's last variable (no literal after it) is `AccessFormat::tail`: every step then
/// stores one value and passes one literal, with no branch on either (the per-step work, these
/// branches on `Option`s among it, was a third of `parse_into`'s own instructions, callgrind,
/// the plain shop log; 4.6% of the run's went with them and the no-loop numbers below).
#[derive(Debug, Clone)]
struct Step {
    var: Var,
    lit: Lit,
    until: Until,
}

/// How a step finds where its value ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// No value: the literal must start here.
    Here,
    /// `$time_local`: 26 bytes when the literal follows them, else searched.
    Stamp,
    /// An `$upstream_*` list whose items could hold the literal's first byte: item by item.
    List,
    /// The literal's first occurrence.
    Find,
}

impl Step {
    /// The steps, and the variable that takes the rest of the line (the format's last token).
    fn compile(toks: &[Tok]) -> (Box<[Step]>, Option<Var>) {
        let mut steps = Vec::new();
        let mut k = 0;
        while k < toks.len() {
            match (&toks[k], toks.get(k + 1)) {
                (Tok::Lit(l), _) => steps.push(Step { var: Var::Other, lit: l.clone(), until: Until::Here }),
                (Tok::Var(v), Some(Tok::Lit(l))) => {
                    let until = if *v == Var::TimeLocal {
                        Until::Stamp
                    } else if v.is_list() && !l.ends_items() {
                        Until::List
                    } else {
                        Until::Find
                    };
                    steps.push(Step { var: *v, lit: l.clone(), until });
                    k += 1;
                }
                // Last, or (a format no compile accepts) followed by another variable: the
                // rest of the line, and the steps end.
                (Tok::Var(v), _) => return (steps.into(), Some(*v)),
            }
            k += 1;
        }
        (steps.into(), None)
    }
}

/// nginx's predefined `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
/// The `main` format of nginx's sample configuration (combined + X-Forwarded-For).
pub const MAIN: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#;

/// A compiled `log_format`.
#[derive(Debug, Clone)]
pub struct AccessFormat {
    pub name: String,
    pub source: String,
    /// A JSON format (`escape=json` templates, the built-in `json`): read by key.
    json: Option<JsonKeys>,
    toks: Vec<Tok>,
    /// `toks` compiled for `parse_into`: each variable with the literal after it.
    steps: Box<[Step]>,
    /// The variable after the last literal, if any: the rest of the line.
    tail: Option<Var>,
    has: [bool; NVARS],
    /// Backslashes in the literals (a JSON-escaped format's `\"`): a line with no more than
    /// these has no escape in any value.
    lit_backslashes: usize,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    #[error("log_format {0:?} has no variables")]
    NoVariables(String),
    #[error("log_format {name:?}: ${a} is directly followed by ${b}; upcause needs a literal between them")]
    Adjacent { name: String, a: String, b: String },
    #[error("log_format {0:?} has no time variable ($time_local, $time_iso8601 or $msec)")]
    NoTime(String),
    #[error("log_format {0:?} has no $status")]
    NoStatus(String),
}

impl AccessFormat {
    /// Compile `source` (the concatenated nginx `log_format` string, without `escape=`) for
    /// analysis: it must carry a time variable and `$status`.
    pub fn compile(name: &str, source: &str) -> Result<AccessFormat, FormatError> {
        let f = Self::compile_fields(name, source)?;
        if !(f.has(Var::TimeLocal) || f.has(Var::TimeIso8601) || f.has(Var::Msec)) {
            return Err(FormatError::NoTime(name.into()));
        }
        if !f.has(Var::Status) {
            return Err(FormatError::NoStatus(name.into()));
        }
        Ok(f)
    }

    /// A JSON access log read by key: `json` (the keys of a `log_format ... escape=json`
    /// template, or none: the common names, `access_json::alias`).
    pub fn json(name: &str, source: &str, keys: JsonKeys) -> AccessFormat {
        let mut has = [false; NVARS];
        for v in [Var::TimeLocal, Var::TimeIso8601, Var::Msec, Var::Status] {
            has[v as usize] = true;
        }
        AccessFormat {
            name: name.into(),
            source: source.into(),
            json: Some(keys),
            toks: vec![],
            steps: Box::default(),
            tail: None,
            has,
            lit_backslashes: 0,
        }
    }

    pub fn is_json(&self) -> bool {
        self.json.is_some()
    }

    /// Any line: a template's fields, or a JSON object's by key (values with JSON escapes are
    /// decoded into `scratch`). `out` must be fresh.
    #[inline]
    pub fn parse_with<'a>(&self, line: &'a [u8], scratch: &'a mut Vec<u8>, out: &mut AccessLine<'a>) -> bool {
        match &self.json {
            Some(k) => super::access_json::parse_json(k, line, scratch, out),
            None => self.parse_into(line, out),
        }
    }

    /// Does `line` fit: `Some(false)` entirely, `Some(true)` with fields after the end of the
    /// format, `None` not at all.
    pub fn fits(&self, line: &[u8]) -> Option<bool> {
        let mut scratch = Vec::new();
        let mut out = AccessLine::default();
        self.parse_with(line, &mut scratch, &mut out).then_some(out.trailing)
    }

    /// Compile a format only to split lines into fields (no time or status required).
    pub fn compile_fields(name: &str, source: &str) -> Result<AccessFormat, FormatError> {
        if let Some(keys) = JsonKeys::from_template(source) {
            return Ok(AccessFormat::json(name, source, keys));
        }
        let mut toks: Vec<Tok> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let b = source.as_bytes();
        let mut i = 0;
        let mut lit = Vec::new();
        while i < b.len() {
            if b[i] == b'$' {
                let (vname, next) = if b.get(i + 1) == Some(&b'{') {
                    let end = b[i + 2..].iter().position(|&c| c == b'}').map(|p| i + 2 + p);
                    match end {
                        Some(e) => (&source[i + 2..e], e + 1),
                        None => ("", i + 1),
                    }
                } else {
                    let n = b[i + 1..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                    (&source[i + 1..i + 1 + n], i + 1 + n)
                };
                if vname.is_empty() {
                    lit.push(b'$');
                    i += 1;
                    continue;
                }
                if !lit.is_empty() {
                    toks.push(Tok::Lit(Lit::new(&std::mem::take(&mut lit))));
                }
                if let Some(Tok::Var(_)) = toks.last() {
                    return Err(FormatError::Adjacent {
                        name: name.into(),
                        a: names.last().cloned().unwrap_or_default(),
                        b: vname.into(),
                    });
                }
                toks.push(Tok::Var(Var::from_name(vname)));
                names.push(vname.to_string());
                i = next;
            } else {
                lit.push(b[i]);
                i += 1;
            }
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(Lit::new(&lit)));
        }
        let mut has = [false; NVARS];
        for t in &toks {
            if let Tok::Var(v) = t {
                has[*v as usize] = true;
            }
        }
        if names.is_empty() {
            return Err(FormatError::NoVariables(name.into()));
        }
        Ok(Self::from_toks(name, source, toks, has))
    }

    fn from_toks(name: &str, source: &str, toks: Vec<Tok>, has: [bool; NVARS]) -> AccessFormat {
        let (steps, tail) = Step::compile(&toks);
        let lit_backslashes = toks
            .iter()
            .map(|t| if let Tok::Lit(l) = t { l.bytes.iter().filter(|&&c| c == b'\\').count() } else { 0 })
            .sum();
        AccessFormat { name: name.into(), source: source.into(), json: None, toks, steps, tail, has, lit_backslashes }
    }

    /// The format as its lines read inside a JSON string (a Docker json-file record's `log`,
    /// still escaped): literals JSON-escaped, so a record's line is split into fields without
    /// decoding it first (`parse_escaped`). `None` for a JSON format.
    pub fn json_escaped(&self) -> Option<AccessFormat> {
        if self.json.is_some() {
            return None;
        }
        let toks = self
            .toks
            .iter()
            .map(|t| match t {
                Tok::Var(v) => Tok::Var(*v),
                Tok::Lit(l) => {
                    let mut e = Vec::with_capacity(l.len() + 4);
                    for &c in l.bytes.iter() {
                        match c {
                            b'"' => e.extend_from_slice(b"\\\""),
                            b'\\' => e.extend_from_slice(b"\\\\"),
                            b'\t' => e.extend_from_slice(b"\\t"),
                            c => e.push(c),
                        }
                    }
                    Tok::Lit(Lit::new(&e))
                }
            })
            .collect();
        Some(Self::from_toks(&self.name, &self.source, toks, self.has))
    }

    /// After `parse_into` of a line still escaped as a JSON string's content with a
    /// `json_escaped` format: the values that hold escapes are decoded into `scratch`, the
    /// others stay borrowed. False if a value's escapes are broken (the caller then reads the
    /// line the general way).
    pub fn decode_escapes<'a>(&self, raw: &[u8], scratch: &'a mut Vec<u8>, out: &mut AccessLine<'a>) -> bool {
        // Most lines hold no backslash beyond the literals' own (one vectorised count).
        if count_byte(raw, b'\\') == self.lit_backslashes {
            return true;
        }
        let tmp = *out;
        scratch.clear();
        let mut decoded = [(0usize, 0usize); NVARS];
        let mut any = [false; NVARS];
        for (i, v) in tmp.vals.iter().enumerate() {
            if let Some(v) = v.filter(|v| v.contains(&b'\\')) {
                let s = scratch.len();
                if !crate::unwrap::json::unescape_into(v, scratch) {
                    return false;
                }
                decoded[i] = (s, scratch.len());
                any[i] = true;
            }
        }
        let scratch: &'a Vec<u8> = scratch;
        *out = tmp;
        for i in 0..NVARS {
            if any[i] {
                out.vals[i] = Some(&scratch[decoded[i].0..decoded[i].1]);
            }
        }
        true
    }

    pub fn has(&self, v: Var) -> bool {
        self.has[v as usize]
    }

    /// Split one line into its fields; `None` if the line does not fit the format.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Option<AccessLine<'a>> {
        let mut out = AccessLine::default();
        self.parse_into(line, &mut out).then_some(out)
    }

    /// `parse` into a line the caller holds (on its stack): returning the 440-byte
    /// `AccessLine` by value cost a memcpy per line (4% of a scan's instructions, callgrind).
    /// `out` must be fresh (`AccessLine::default()`) or hold the last line this format split:
    /// a line that fits is given a value for every variable of the format, and `trailing` is
    /// set either way (the value of any other variable stays `None`). False if the line does
    /// not fit (`out` then holds part of it).
    #[inline]
    pub fn parse_into<'a>(&self, line: &'a [u8], out: &mut AccessLine<'a>) -> bool {
        out.trailing = false;
        // Where the next value starts: positions in the whole line (a slice of the rest, cut
        // at every field, cost bounds checks and a pointer and a length each).
        let mut pos = 0;
        for step in self.steps.iter() {
            let lit = &step.lit;
            let at = match step.until {
                Until::Here => {
                    if !line.get(pos..).is_some_and(|r| lit.starts(r)) {
                        return false;
                    }
                    pos
                }
                Until::Stamp if line.get(pos + 26..).is_some_and(|r| lit.starts(r)) => pos + 26,
                Until::List => match list_len(line.get(pos..).unwrap_or_default(), lit) {
                    Some(n) => pos + n,
                    None => match find_at(line, pos, lit) {
                        Some(a) => a,
                        None => return false,
                    },
                },
                Until::Stamp | Until::Find => match find_at(line, pos, lit) {
                    Some(a) => a,
                    None => return false,
                },
            };
            // The literal was matched at `at` (every branch above checks it), so neither
            // range fails; if one did, the line would count as malformed, not be cut.
            let Some(value) = line.get(pos..at) else {
                return false;
            };
            out.vals[step.var as usize] = Some(value);
            pos = at + lit.len();
        }
        let Some(rest) = line.get(pos..) else {
            return false;
        };
        if let Some(v) = self.tail {
            // A variable at the end of the format: the rest of the line.
            out.vals[v as usize] = Some(rest);
            return true;
        }
        let Some(&first) = rest.first() else {
            return true;
        };
        // Fields appended after the format (formats are often extended at the end, and
        // ingress controllers add their own): ignored, but flagged so format detection
        // prefers a format that fits the whole line.
        if first != b' ' {
            return false;
        }
        out.trailing = true;
        true
    }
}

/// How many times `b` occurs in `h`: 64-byte blocks of byte compares summed in a `u8` (at
/// most 64 per block), which the compiler vectorises (an iterator `filter().count()` ran a
/// byte at a time: 100 ns per Docker access line, perf).
#[inline]
fn count_byte(h: &[u8], b: u8) -> usize {
    let mut blocks = h.chunks_exact(64);
    let mut n = 0usize;
    for c in &mut blocks {
        n += c.iter().map(|&x| (x == b) as u8).sum::<u8>() as usize;
    }
    n + blocks.remainder().iter().filter(|&&x| x == b).count()
}

/// One access line's fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLine<'a> {
    vals: [Option<&'a [u8]>; NVARS],
    /// The line carried fields after the end of the format.
    pub trailing: bool,
}

impl<'a> AccessLine<'a> {
    /// Set the value of the variable with index `i` (`Var as usize`).
    pub(crate) fn set_index(&mut self, i: usize, v: &'a [u8]) {
        self.vals[i] = Some(v);
    }

    /// The raw value, `None` when absent from the format.
    #[inline]
    pub fn raw(&self, v: Var) -> Option<&'a [u8]> {
        self.vals[v as usize]
    }

    /// The value with nginx's `-` (empty) and `""` mapped to `None`.
    #[inline]
    pub fn get(&self, v: Var) -> Option<&'a [u8]> {
        self.vals[v as usize].filter(|b| !b.is_empty() && *b != b"-")
    }

    pub fn status(&self) -> Option<u16> {
        parse_u16(self.raw(Var::Status)?)
    }

    /// Host: `$host`, else `$http_host`, else `$server_name`.
    pub fn host(&self) -> Option<&'a [u8]> {
        self.get(Var::Host).or_else(|| self.get(Var::HttpHost)).or_else(|| self.get(Var::ServerName))
    }

    /// (method, uri, protocol) from `$request`, or from the separate variables.
    pub fn request_parts(&self) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
        if let Some(r) = self.get(Var::Request) {
            let (method, uri) = crate::model::event::request_line_parts(r);
            return (method.map(|m| &r[m]), Some(&r[uri]));
        }
        (self.get(Var::RequestMethod), self.get(Var::RequestUri).or_else(|| self.get(Var::Uri)))
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
