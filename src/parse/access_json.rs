//! JSON access logs (`log_format ... escape=json`), read by key rather than by template.
//!
//! Input: one line holding a JSON object, and optionally the key map of a JSON `log_format`
//! (from `--log-format` or `--nginx-conf`). Output: the same `AccessLine` a text format
//! gives, with values borrowed from the line or, when JSON escapes had to be undone, from the
//! caller's scratch buffer. Invariants: keys are found wherever they are (any order, nested
//! objects such as `httpRequest.status` included); numbers and strings are read alike; the
//! key names of common configurations are understood without a hint (`alias`); no allocation
//! per line but the scratch buffer's growth; a line without a time and a status is rejected.

use super::access::{AccessLine, Var};
use crate::unwrap::json::{self, Value};

/// Keys of a JSON `log_format` (`"rt":"$request_time"`), normalised (`normalise`).
#[derive(Clone, Debug, Default)]
pub struct JsonKeys {
    explicit: Vec<(Box<[u8]>, Var)>,
}

/// Longest key compared (longer keys are never aliases).
const KEY_MAX: usize = 48;

/// A key without case and punctuation: `upstreamStatus`, `upstream_status` and
/// `upstream-status` compare equal; `@timestamp` is `timestamp`.
pub fn normalise<'b>(key: &[u8], buf: &'b mut [u8; KEY_MAX]) -> Option<&'b [u8]> {
    let mut n = 0;
    for &c in key {
        if c.is_ascii_alphanumeric() {
            *buf.get_mut(n)? = c.to_ascii_lowercase();
            n += 1;
        }
    }
    Some(&buf[..n])
}

/// Where a value goes, and how strongly (lower wins when several keys name one variable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Is(Var, u8),
    /// A time of any of nginx's shapes (`$time_local`, `$time_iso8601`, `$msec`), decided
    /// by the value.
    Time(u8),
    /// An address list whose first item is the client (`X-Forwarded-For`).
    FirstOf(Var, u8),
    /// A URL whose path is the URI (`requestUrl`).
    UrlPath(u8),
}

/// The variable a key of common configurations names (normalised key), with its rank:
/// nginx's own variable names first, then the names of ingress controllers, log shippers
/// and tutorials (README, Inputs: JSON access logs).
pub fn alias(k: &[u8]) -> Option<Target> {
    use super::access::Var as V;
    use Target::*;
    Some(match k {
        b"timelocal" => Is(V::TimeLocal, 0),
        b"timeiso8601" => Is(V::TimeIso8601, 0),
        b"msec" => Is(V::Msec, 0),
        b"timestamp" | b"time" | b"datetime" | b"date" | b"ts" => Time(2),
        b"remoteaddr" => Is(V::RemoteAddr, 0),
        b"clientip" | b"clientaddr" | b"remoteip" => Is(V::RemoteAddr, 1),
        b"client" | b"ip" => Is(V::RemoteAddr, 2),
        b"xforwardedfor" | b"httpxforwardedfor" => FirstOf(V::RemoteAddr, 3),
        b"remoteuser" => Is(V::RemoteUser, 0),
        b"request" => Is(V::Request, 0),
        b"requestmethod" | b"method" | b"httpmethod" | b"verb" => Is(V::RequestMethod, 0),
        b"requesturi" => Is(V::RequestUri, 0),
        b"uri" | b"path" => Is(V::Uri, 1),
        b"requesturl" | b"url" => UrlPath(2),
        b"serverprotocol" | b"protocol" | b"httpversion" => Is(V::ServerProtocol, 0),
        b"status" | b"statuscode" | b"httpstatus" | b"responsestatus" => Is(V::Status, 0),
        b"bodybytessent" => Is(V::BodyBytesSent, 0),
        b"bytessent" | b"bytes" | b"responsesize" | b"size" => Is(V::BytesSent, 1),
        b"httpreferer" | b"referer" | b"referrer" => Is(V::HttpReferer, 0),
        b"httpuseragent" | b"useragent" => Is(V::HttpUserAgent, 0),
        b"host" => Is(V::Host, 0),
        b"httphost" => Is(V::HttpHost, 0),
        b"servername" | b"vhost" | b"virtualhost" | b"domain" => Is(V::ServerName, 1),
        b"requesttime" | b"responsetime" | b"requestduration" | b"duration" | b"latency" | b"rt" => {
            Is(V::RequestTime, if k == b"requesttime" { 0 } else { 1 })
        }
        b"upstreamaddr" | b"upstreamaddress" | b"upstream" | b"uaddr" | b"ua" => {
            Is(V::UpstreamAddr, if k == b"upstreamaddr" { 0 } else { 1 })
        }
        b"upstreamstatus" | b"ustatus" | b"us" => Is(V::UpstreamStatus, if k == b"upstreamstatus" { 0 } else { 1 }),
        b"upstreamresponsetime" | b"upstreamtime" | b"urt" => {
            Is(V::UpstreamResponseTime, if k == b"upstreamresponsetime" { 0 } else { 1 })
        }
        b"upstreamconnecttime" | b"uct" => Is(V::UpstreamConnectTime, if k == b"uct" { 1 } else { 0 }),
        b"upstreamheadertime" | b"uht" => Is(V::UpstreamHeaderTime, if k == b"uht" { 1 } else { 0 }),
        b"requestid" | b"reqid" | b"xrequestid" => Is(V::RequestId, 1),
        _ => return None,
    })
}

impl JsonKeys {
    /// The key map of a JSON `log_format` (`{"time":"$time_iso8601","status":$status}`;
    /// a leading `escape=json` is allowed). `None` if `source` is no JSON template.
    pub fn from_template(source: &str) -> Option<JsonKeys> {
        let s = source.trim_start();
        let s = s.strip_prefix("escape=json").map(str::trim_start).unwrap_or(s);
        if !s.starts_with('{') {
            return None;
        }
        let re = regex::Regex::new(r#""([^"\\]+)"\s*:\s*"?\$\{?([A-Za-z0-9_]+)"#).expect("valid regex");
        let mut explicit = Vec::new();
        for c in re.captures_iter(s) {
            let mut buf = [0u8; KEY_MAX];
            if let Some(k) = normalise(c[1].as_bytes(), &mut buf) {
                explicit.push((k.to_vec().into_boxed_slice(), Var::from_name(&c[2])));
            }
        }
        Some(JsonKeys { explicit })
    }

    fn target(&self, k: &[u8]) -> Option<Target> {
        match self.explicit.iter().find(|(e, _)| &e[..] == k) {
            Some((_, Var::TimeLocal | Var::TimeIso8601 | Var::Msec)) => Some(Target::Time(0)),
            Some((_, v)) if *v != Var::Other => Some(Target::Is(*v, 0)),
            Some(_) => None,
            None => alias(k).map(|t| match t {
                Target::Is(v, r) => Target::Is(v, r + 1),
                Target::Time(r) => Target::Time(r + 1),
                Target::FirstOf(v, r) => Target::FirstOf(v, r + 1),
                Target::UrlPath(r) => Target::UrlPath(r + 1),
            }),
        }
    }
}

/// Where a found value lies.
#[derive(Clone, Copy)]
enum Loc<'a> {
    Line(&'a [u8]),
    Scratch(usize, usize),
}

struct Found<'a> {
    slots: [Option<(u8, Loc<'a>)>; super::access::NVARS],
}

/// The variable a time value is, by its shape.
fn time_var(v: &[u8]) -> Option<Var> {
    if v.len() == 26 && v.get(2) == Some(&b'/') {
        Some(Var::TimeLocal)
    } else if v.len() >= 19 && v.get(4) == Some(&b'-') {
        Some(Var::TimeIso8601)
    } else if !v.is_empty() && v.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        Some(Var::Msec)
    } else {
        None
    }
}

fn visit<'a>(keys: &JsonKeys, obj: &'a [u8], scratch: &mut Vec<u8>, found: &mut Found<'a>, depth: usize) -> bool {
    let mut nested: Vec<&'a [u8]> = Vec::new();
    let ok = json::members(obj, |k, v| {
        if let Value::Object(o) = v {
            if depth < 4 {
                nested.push(o);
            }
            return;
        }
        let mut buf = [0u8; KEY_MAX];
        let Some(t) = normalise(k, &mut buf).and_then(|k| keys.target(k)) else { return };
        let (raw, escaped) = match v {
            Value::Str { raw, escaped } => (raw, escaped),
            Value::Scalar(b"null") => return,
            Value::Scalar(s) => (s, false),
            _ => return,
        };
        let loc = if escaped {
            let start = scratch.len();
            if !json::unescape_into(raw, scratch) {
                return;
            }
            Loc::Scratch(start, scratch.len())
        } else {
            Loc::Line(raw)
        };
        // The value's bytes, and a part of them as a location of its own (no copy).
        let text: &[u8] = match loc {
            Loc::Line(b) => b,
            Loc::Scratch(a, b) => &scratch[a..b],
        };
        let sub = |from: usize, len: usize| match loc {
            Loc::Line(b) => Loc::Line(&b[from..from + len]),
            Loc::Scratch(a, _) => Loc::Scratch(a + from, a + from + len),
        };
        let (var, rank, loc) = match t {
            Target::Is(v, r) => (v, r, loc),
            Target::Time(r) => match time_var(text) {
                Some(v) => (v, r, loc),
                None => return,
            },
            Target::FirstOf(v, r) => {
                let end = memchr::memchr(b',', text).unwrap_or(text.len());
                let lead = text[..end].iter().take_while(|c| c.is_ascii_whitespace()).count();
                let first = text[lead..end].trim_ascii_end();
                (v, r, sub(lead, first.len()))
            }
            Target::UrlPath(r) => {
                let after = memchr::memmem::find(text, b"://").map_or(0, |i| i + 3);
                match memchr::memchr(b'/', &text[after..]) {
                    Some(p) => (Var::RequestUri, r, sub(after + p, text.len() - after - p)),
                    None => return,
                }
            }
        };
        let slot = &mut found.slots[var as usize];
        if slot.is_none_or(|(r, _)| rank < r) {
            *slot = Some((rank, loc));
        }
    });
    ok && nested.into_iter().all(|o| visit(keys, o, scratch, found, depth + 1))
}

/// Read one JSON access line into `out` (fresh); values with escapes are decoded into
/// `scratch`. False if the line is no JSON object with a time and a status.
pub fn parse_json<'a>(keys: &JsonKeys, line: &'a [u8], scratch: &'a mut Vec<u8>, out: &mut AccessLine<'a>) -> bool {
    if line.first() != Some(&b'{') {
        return false;
    }
    scratch.clear();
    let mut found = Found { slots: [None; super::access::NVARS] };
    if !visit(keys, line, scratch, &mut found, 0) {
        return false;
    }
    let scratch: &'a Vec<u8> = scratch;
    for (i, s) in found.slots.iter().enumerate() {
        if let Some((_, loc)) = s {
            let mut v = match *loc {
                Loc::Line(b) => b,
                Loc::Scratch(a, b) => &scratch[a..b],
            };
            if i == Var::RequestTime as usize {
                // `"latency":"0.170s"` (Google's httpRequest).
                v = v.strip_suffix(b"s").unwrap_or(v);
            }
            out.set_index(i, v);
        }
    }
    let has_time = [Var::TimeLocal, Var::TimeIso8601, Var::Msec].iter().any(|v| out.raw(*v).is_some());
    has_time && out.status().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(keys: &JsonKeys, line: &[u8]) -> Option<Vec<(Var, String)>> {
        let mut sc = Vec::new();
        let mut l = AccessLine::default();
        if !parse_json(keys, line, &mut sc, &mut l) {
            return None;
        }
        let vars = [
            Var::TimeLocal,
            Var::TimeIso8601,
            Var::Msec,
            Var::RemoteAddr,
            Var::Request,
            Var::RequestMethod,
            Var::RequestUri,
            Var::Uri,
            Var::Status,
            Var::RequestTime,
            Var::UpstreamAddr,
            Var::UpstreamStatus,
            Var::Host,
            Var::HttpUserAgent,
        ];
        Some(vars.iter().filter_map(|v| l.raw(*v).map(|b| (*v, String::from_utf8_lossy(b).into_owned()))).collect())
    }

    #[test]
    fn nginx_names_numbers_and_escapes() {
        let k = JsonKeys::default();
        let r = read(&k, br#"{"time_iso8601":"2026-11-22T04:14:42+01:00","remote_addr":"10.0.0.1","request":"GET /a?q=\"x\" HTTP/1.1","status":502,"request_time":"0.003","upstream_addr":"unix:/run/php.sock, 10.0.0.2:9000","upstream_status":"502, 502","host":"shop.test","http_user_agent":"curl\/8"}"#).unwrap();
        assert!(r.contains(&(Var::Request, "GET /a?q=\"x\" HTTP/1.1".into())));
        assert!(r.contains(&(Var::Status, "502".into())));
        assert!(r.contains(&(Var::UpstreamStatus, "502, 502".into())));
        assert!(r.contains(&(Var::HttpUserAgent, "curl/8".into())));
        assert!(r.contains(&(Var::TimeIso8601, "2026-11-22T04:14:42+01:00".into())));
        // No time or no status: not an access line.
        assert!(read(&k, br#"{"remote_addr":"10.0.0.1","status":502}"#).is_none());
        assert!(read(&k, br#"{"log":"x","stream":"stdout","time":"2026-11-22T03:14:42Z"}"#).is_none());
        assert!(read(&k, b"not json").is_none());
    }

    #[test]
    fn aliases_and_nested_objects() {
        let k = JsonKeys::default();
        let r = read(&k, br#"{"@timestamp":"2026-11-22T04:14:42+01:00","client_ip":"10.0.0.1","method":"GET","uri":"/a","protocol":"HTTP/1.1","status":"504","user_agent":"x"}"#).unwrap();
        assert!(r.contains(&(Var::RequestMethod, "GET".into())) && r.contains(&(Var::Uri, "/a".into())));
        assert!(r.contains(&(Var::RemoteAddr, "10.0.0.1".into())) && r.contains(&(Var::Status, "504".into())));
        // ingress-nginx's nested form (kubernetes/ingress-nginx#8252).
        let g = read(&k, br#"{"timestamp":"2022-02-16T21:45:13+00:00","upstreamStatus":"","upstreamAddr":"","httpRequest":{"requestMethod":"GET","requestUrl":"appname.company.com/thisdoesnotexist","status":"500","remoteIp":"10.0.0.9","latency":"0.170s"}}"#).unwrap();
        assert!(g.contains(&(Var::RequestUri, "/thisdoesnotexist".into())), "{g:?}");
        assert!(g.contains(&(Var::RequestTime, "0.170".into())) && g.contains(&(Var::Status, "500".into())));
        // A forwarded-for list gives its first address; remote_addr wins over it.
        let x =
            read(&k, br#"{"msec":"1795317282.123","x_forwarded_for":"203.0.113.7, 10.0.0.1","status":200}"#).unwrap();
        assert!(
            x.contains(&(Var::RemoteAddr, "203.0.113.7".into())) && x.contains(&(Var::Msec, "1795317282.123".into()))
        );
        let y = read(
            &k,
            br#"{"msec":"1795317282.123","remote_addr":"10.0.0.2","x_forwarded_for":"203.0.113.7","status":200}"#,
        )
        .unwrap();
        assert!(y.contains(&(Var::RemoteAddr, "10.0.0.2".into())));
    }

    #[test]
    fn keys_of_a_json_log_format() {
        let k = JsonKeys::from_template(r#"escape=json {"t":"$time_local","c":"$remote_addr","r":"$request","s":$status,"d":"$request_time","ua":"$upstream_addr"}"#).unwrap();
        let r = read(&k, br#"{"t":"22/Nov/2026:04:14:42 +0100","c":"10.0.0.1","r":"GET / HTTP/1.1","s":502,"d":"1.5","ua":"10.0.0.2:80"}"#).unwrap();
        assert!(r.contains(&(Var::TimeLocal, "22/Nov/2026:04:14:42 +0100".into())));
        assert!(
            r.contains(&(Var::RequestTime, "1.5".into())) && r.contains(&(Var::UpstreamAddr, "10.0.0.2:80".into()))
        );
        assert!(JsonKeys::from_template("$remote_addr - [$time_local]").is_none());
    }
}
