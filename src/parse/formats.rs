//! The access-log formats tried without a hint, and formats inferred from the fields a line
//! carries after the end of a known one.
//!
//! Input: nothing (the built-ins), or a known format and sample lines that fit it only as a
//! prefix. Output: compiled `AccessFormat`s. Invariants: a built-in is copied from the
//! project that ships it (sources below); an inferred format is only offered when it fits
//! every sample line whole, so it never reads fewer fields than its base.

use super::access::{AccessFormat, Var, COMBINED, MAIN};
use super::access_json::{alias, normalise, JsonKeys, Target};

/// The nginx blog's `upstream_time` format ("Using NGINX Logging for Application Performance
/// Monitoring"), copied as published: no space before `rt=`.
pub const UPSTREAM_TIME: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"rt=$request_time uct="$upstream_connect_time" uht="$upstream_header_time" urt="$upstream_response_time""#;

/// ingress-nginx's default `upstreaminfo` (docs/user-guide/nginx-configuration/log-format.md),
/// as older releases wrote it (`"$request"`).
pub const UPSTREAMINFO: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id"#;

/// The same as current releases write it: `"$request_method $uri $server_protocol"` (no query
/// string in the URI).
pub const UPSTREAMINFO_URI: &str = r#"$remote_addr - $remote_user [$time_local] "$request_method $uri $server_protocol" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id"#;

/// Kong 3.x's `kong_log_format` (kong/templates/nginx_kong.lua).
pub const KONG: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" kong_request_id: "$kong_request_id""#;

/// Formats tried on every access log nothing assigns a format to, in this order. OpenResty's
/// and Bitnami's images log in nginx's `combined` and `main` (their shipped nginx.conf), the
/// official nginx image in `main`.
pub const BUILTINS: &[(&str, &str)] = &[
    ("combined", COMBINED),
    ("main", MAIN),
    ("upstream_time", UPSTREAM_TIME),
    ("upstreaminfo", UPSTREAMINFO),
    ("upstreaminfo_uri", UPSTREAMINFO_URI),
    ("kong", KONG),
];

/// Every built-in, the JSON reader last.
pub fn builtins() -> Vec<AccessFormat> {
    let mut v: Vec<AccessFormat> = BUILTINS.iter().filter_map(|(n, s)| AccessFormat::compile(n, s).ok()).collect();
    v.push(AccessFormat::json("json", "json (keys of common configurations)", JsonKeys::default()));
    v
}

/// One `key=value` or `key="value"` field.
struct Field<'a> {
    key: &'a str,
    quoted: bool,
}

/// The fields of `rest` (the text after a format's end), or `None` if any token is not
/// `key=value`.
fn fields(rest: &str) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let key = &s[..eq];
        if key.is_empty() || !key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.') {
            return None;
        }
        let v = &s[eq + 1..];
        let (quoted, end) = match v.strip_prefix('"') {
            Some(q) => (true, eq + 2 + q.find('"')? + 1),
            None => (false, eq + 1 + v.find(' ').unwrap_or(v.len())),
        };
        out.push(Field { key, quoted });
        s = s[end..].trim_start();
    }
    (!out.is_empty()).then_some(out)
}

/// Fields appended after the end of a known format as `key=value` pairs (`rt=0.003
/// uaddr="unix:/run/php.sock" ustatus="502"`), read by key: the keys of the nginx blog's
/// `upstream_time` and of `access_json::alias` name nginx variables; other keys are kept as
/// fields nothing reads. `None` unless the first sample's fields give a format that every
/// sample fits whole. The first sample decides the order of the fields.
pub fn infer_key_values(base: &AccessFormat, samples: &[&[u8]]) -> Option<AccessFormat> {
    if base.is_json() {
        return None;
    }
    let first = samples.iter().find(|l| base.fits(l) == Some(true))?;
    let rest = trailing_part(base, first)?;
    let fs = fields(std::str::from_utf8(rest).ok()?)?;
    let mut tmpl = String::new();
    let mut known = Vec::new();
    for f in &fs {
        let mut buf = [0u8; 48];
        let var = normalise(f.key.as_bytes(), &mut buf).and_then(alias).and_then(|t| match t {
            Target::Is(v, _) => Some(v),
            _ => None,
        });
        let name = match var {
            Some(v) if !known.contains(&v) => {
                known.push(v);
                v.name().to_string()
            }
            _ => format!("kv_{}", f.key.replace(['-', '.'], "_")),
        };
        let q = if f.quoted { "\"" } else { "" };
        tmpl.push_str(&format!(" {}={q}${{{name}}}{q}", f.key));
    }
    if !known.iter().any(|v| *v != Var::Host) {
        return None;
    }
    let keys: Vec<&str> = fs.iter().map(|f| f.key).collect();
    let f = AccessFormat::compile(&format!("{} + {}", base.name, keys.join(" ")), &format!("{}{}", base.source, tmpl))
        .ok()?;
    samples.iter().filter(|l| base.fits(l).is_some()).all(|l| f.fits(l) == Some(false)).then_some(f)
}

/// The text after the end of `base` on a line that fits it with trailing fields.
pub fn trailing_part<'a>(base: &AccessFormat, line: &'a [u8]) -> Option<&'a [u8]> {
    // Find where the format ends: the longest prefix of the line (at a space) that fits whole.
    let mut cut = line.len();
    while let Some(sp) = memchr::memrchr(b' ', &line[..cut]) {
        if base.fits(&line[..sp]) == Some(false) {
            return Some(&line[sp + 1..]);
        }
        cut = sp;
    }
    None
}

/// How many space-separated fields follow the end of `base` on `line` (quoted values count
/// as one).
pub fn extra_fields(base: &AccessFormat, line: &[u8]) -> usize {
    let Some(rest) = trailing_part(base, line) else { return 0 };
    let mut n = 0;
    let mut quoted = false;
    let mut in_field = false;
    for &c in rest {
        match c {
            b'"' => {
                quoted = !quoted;
                in_field = true;
            }
            b' ' if !quoted => {
                if in_field {
                    n += 1;
                }
                in_field = false;
            }
            _ => in_field = true,
        }
    }
    n + usize::from(in_field)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURED: &[u8] = br#"127.0.0.11 - - [22/Nov/2026:04:14:42 +0100] "GET /ok.php?rid=mixed-0001 HTTP/1.1" 502 24 "-" "curl/7.88.1" host=shop.test rt=0.003 uaddr="unix:/tmp/run/php-fpm-www.sock" ustatus="502" urt="0.003" uct="0.000" uht="0.001""#;

    #[test]
    fn builtins_compile_and_read_their_projects_lines() {
        let b = builtins();
        assert_eq!(b.len(), BUILTINS.len() + 1);
        let get = |n: &str| b.iter().find(|f| f.name == n).unwrap();
        // fastify/help#943 (ingress-nginx, `$request` form, cut by the issue) and a full line.
        let ing = br#"83.57.43.27 - - [25/Sep/2023:08:22:30 +0000] "POST /graphql HTTP/2.0" 502 552 "https://portal.example.com/" "Mozilla/5.0" 1234 0.170 [default-graphql-service-80] [] 10.0.247.226:80, 10.0.247.227:80 0, 0 0.100, 0.070 502, 502 7d3c633f19688de687871431e9de7753"#;
        let mut sc = Vec::new();
        let mut l = crate::parse::access::AccessLine::default();
        assert!(get("upstreaminfo").parse_with(ing, &mut sc, &mut l));
        assert_eq!(l.get(Var::UpstreamStatus), Some(&b"502, 502"[..]));
        assert_eq!(l.get(Var::RequestTime), Some(&b"0.170"[..]));
        let uri = br#"10.244.219.64 - - [18/Dec/2022:16:15:26 +0000] "POST /v1/images/scaled HTTP/2.0" 413 176 "-" "okhttp/4.10.0" 76 0.000 [-] [] - - - - 99054c4f5c1643dc555b8964df874e62"#;
        assert_eq!(get("upstreaminfo_uri").fits(uri), Some(false));
        let kong = br#"172.18.0.1 - - [12/Mar/2024:10:00:00 +0000] "GET /x HTTP/1.1" 502 150 "-" "curl/8.4.0" kong_request_id: "6e1d3f5a3e2b4d0c""#;
        assert_eq!(get("kong").fits(kong), Some(false));
        let blog = br#"10.0.0.1 - - [12/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8"rt=0.001 uct="0.000" uht="0.001" urt="0.001""#;
        assert_eq!(get("upstream_time").fits(blog), Some(false));
        assert_eq!(get("combined").fits(CAPTURED), Some(true));
        assert_eq!(extra_fields(get("combined"), CAPTURED), 7);
    }

    #[test]
    fn key_value_fields_after_combined_are_inferred() {
        let combined = AccessFormat::compile("combined", COMBINED).unwrap();
        let other = br#"127.0.0.12 - - [22/Nov/2026:04:14:43 +0100] "GET /x HTTP/1.1" 200 24 "-" "Mozilla/5.0 (X11)" host=api.test rt=0.010 uaddr="127.0.0.1:9000, 127.0.0.1:9001" ustatus="502, 200" urt="0.001, 0.009" uct="0.000, 0.000" uht="0.001, 0.009""#;
        let f = infer_key_values(&combined, &[CAPTURED, other]).unwrap();
        assert_eq!(f.name, "combined + host rt uaddr ustatus urt uct uht");
        let mut sc = Vec::new();
        let mut l = crate::parse::access::AccessLine::default();
        assert!(f.parse_with(other, &mut sc, &mut l) && !l.trailing);
        assert_eq!(l.get(Var::UpstreamStatus), Some(&b"502, 200"[..]));
        assert_eq!(l.get(Var::Host), Some(&b"api.test"[..]));
        assert_eq!(l.get(Var::UpstreamHeaderTime), Some(&b"0.001, 0.009"[..]));
        // Fields that are not key=value, or no key naming a timing or upstream variable: none.
        let pos = br#"127.0.0.1 - - [22/Nov/2026:04:14:43 +0100] "GET /x HTTP/1.1" 200 24 "-" "x" 0.010 abc"#;
        assert!(infer_key_values(&combined, &[pos]).is_none());
        let odd = br#"127.0.0.1 - - [22/Nov/2026:04:14:43 +0100] "GET /x HTTP/1.1" 200 24 "-" "x" foo=1 bar="2""#;
        assert!(infer_key_values(&combined, &[odd]).is_none());
    }
}
