//! Request ↔ nginx error-line join.
//!
//! Input: failing requests (access log) and nginx error events, both sorted by time.
//! Output: for each request the indices of its error lines, and for each error line the
//! request it belongs to. Invariants: nginx error lines carry no request id, so a line joins
//! a request only when client, request line and host agree, the upstream peer (when both
//! sides name one) is one of the request's attempts, and the line's time lies within the
//! request (from its start, `end - $request_time`, to its end, with `TOLERANCE_MS` for the
//! second-resolution stamps); each line joins at most one request: among candidates, the
//! one whose end is nearest after the line (the failure ends the request).

use crate::model::{ErrorEvent, RequestEvent, Ts};
use std::collections::HashMap;

/// Stamps have one-second resolution on both sides.
pub const TOLERANCE_MS: Ts = 2_000;
/// How far back a request may have started when `$request_time` is not logged.
const UNKNOWN_DURATION_MS: Ts = 600_000;

pub struct Joined {
    pub lines_of: Vec<Vec<usize>>,
    pub request_of: Vec<Option<usize>>,
    /// Requests joined only by the loose fallback (client + host + time).
    pub loose: Vec<bool>,
}

/// Undo nginx's access-log escaping (`\xHH`) so request lines compare with the error log's
/// raw copy.
pub fn unescape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("\\x") {
        return s.into();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

/// `METHOD TARGET` of a request line (protocol dropped).
fn target(line: &str) -> &str {
    match line.rsplit_once(' ') {
        Some((t, p)) if p.starts_with("HTTP/") => t,
        _ => line,
    }
}

fn host_eq(a: &str, b: &str) -> bool {
    let strip = |h: &str| {
        h.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|c| c.is_ascii_digit()))
            .map(|x| x.0)
            .unwrap_or(h)
            .to_ascii_lowercase()
    };
    strip(a) == strip(b)
}

fn request_key(r: &RequestEvent) -> Option<(String, String)> {
    let client = r.client.clone().unwrap_or_default();
    let t = match (&r.request, &r.method, &r.uri) {
        (Some(req), _, _) => target(&unescape(req)).to_string(),
        (None, Some(m), Some(u)) => format!("{m} {}", unescape(u)),
        _ => return None,
    };
    Some((client, t))
}

fn line_key(e: &ErrorEvent) -> Option<(String, String)> {
    Some((e.client.clone().unwrap_or_default(), target(e.request.as_deref()?).to_string()))
}

fn peer_ok(r: &RequestEvent, e: &ErrorEvent) -> bool {
    match (r.upstream_addr.as_deref(), e.peer()) {
        (Some(addrs), Some(peer)) => addrs.split([',', ' ']).any(|a| a == peer),
        _ => true,
    }
}

fn host_ok(r: &RequestEvent, e: &ErrorEvent) -> bool {
    match (r.host.as_deref(), e.host.as_deref().or(e.server.as_deref())) {
        (Some(a), Some(b)) => host_eq(a, b) || e.server.as_deref().is_some_and(|s| host_eq(a, s)),
        _ => true,
    }
}

fn window(r: &RequestEvent) -> (Ts, Ts) {
    let start = if r.request_time.is_some() { r.start_ts() } else { r.ts - UNKNOWN_DURATION_MS };
    (start - TOLERANCE_MS, r.ts + TOLERANCE_MS)
}

/// Lines that can belong to a request: upstream failures and the application/client lines
/// that explain a 500 or a 499.
pub fn joinable(e: &ErrorEvent) -> bool {
    use crate::model::CauseClass::*;
    e.failure || matches!(e.class, C10 | C11 | C12 | C28 | C8)
}

pub fn join(requests: &[RequestEvent], errors: &[ErrorEvent]) -> Joined {
    let mut by_key: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, r) in requests.iter().enumerate() {
        if let Some(k) = request_key(r) {
            by_key.entry(k).or_default().push(i);
        }
    }
    let mut lines_of = vec![Vec::new(); requests.len()];
    let mut request_of = vec![None; errors.len()];
    for (li, e) in errors.iter().enumerate() {
        if !joinable(e) {
            continue;
        }
        let Some(k) = line_key(e) else { continue };
        let Some(cands) = by_key.get(&k) else {
            continue;
        };
        let best = cands
            .iter()
            .copied()
            .filter(|&ri| {
                let r = &requests[ri];
                let (a, b) = window(r);
                e.ts >= a && e.ts <= b && peer_ok(r, e) && host_ok(r, e)
            })
            .min_by_key(|&ri| {
                let d = requests[ri].ts - e.ts;
                // Prefer requests that end at or after the line; then the nearest.
                (d < -TOLERANCE_MS / 2, d.abs(), ri)
            });
        if let Some(ri) = best {
            lines_of[ri].push(li);
            request_of[li] = Some(ri);
        }
    }
    // Fallback: same client and host, a failure line with no request of its own, nearest in
    // time within the request.
    let mut loose = vec![false; requests.len()];
    let mut free: Vec<usize> = (0..errors.len()).filter(|&i| request_of[i].is_none() && errors[i].failure).collect();
    free.sort_by_key(|&i| errors[i].ts);
    for (ri, r) in requests.iter().enumerate() {
        if !lines_of[ri].is_empty() {
            continue;
        }
        let (a, b) = window(r);
        let from = free.partition_point(|&i| errors[i].ts < a);
        let pick = free[from..]
            .iter()
            .copied()
            .take_while(|&i| errors[i].ts <= b)
            .filter(|&i| {
                let e = &errors[i];
                request_of[i].is_none() && e.client.is_some() && e.client == r.client && host_ok(r, e) && peer_ok(r, e)
            })
            .min_by_key(|&i| ((r.ts - errors[i].ts).abs(), i));
        if let Some(li) = pick {
            lines_of[ri].push(li);
            request_of[li] = Some(ri);
            loose[ri] = true;
        }
    }
    Joined { lines_of, request_of, loose }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaping() {
        assert_eq!(unescape("GET /a\\x22b HTTP/1.1"), "GET /a\"b HTTP/1.1");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("bad \\xZZ"), "bad \\xZZ");
        assert!(host_eq("Shop.test:8080", "shop.test"));
        assert_eq!(target("GET /x?y HTTP/1.1"), "GET /x?y");
    }
}
