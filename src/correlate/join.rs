//! Request ↔ nginx error-line join.
//!
//! Input: failing requests (access log) and nginx error events, both sorted by time.
//! Output: for each request the indices of its error lines, and for each error line the
//! request it belongs to. Invariants: nginx error lines carry no request id, so a line joins
//! a request only when client, request line and host agree, the upstream peer (when both
//! sides name one) is one of the request's attempts, and the line's time lies within the
//! request (from its start, `end - $request_time`, to its end, with `TOLERANCE_MS` for the
//! second-resolution stamps).
//!
//! One line joins at most one request. When several could take it (every request from one
//! load-balancer address, the same URI failing a thousand times a minute), the choice is
//! deterministic: a request that still has room for a line of that kind first (one failure
//! line per failed attempt in `$upstream_status`, at least one; one application or client
//! line), then the nearest end time (preferring requests that end no earlier than
//! `TOLERANCE_MS / 2` before the line: the failure ends the request), then file order. Lines
//! are taken in time order.
//!
//! Cost: one sweep per (client, request line) in time order, with the candidates in ordered
//! sets keyed by end time, so the join is O((requests + lines) log requests) however many
//! requests share a key (it used to compare each line with every request of its key:
//! quadratic behind a load balancer). A candidate a host or peer check rejects is skipped;
//! after `MAX_REJECTS` such skips for one line the search stops there (so input made of
//! near-misses stays linear). Memory: the keys' requests in one flat list (`Keys`), and a
//! key's ordered sets only while a request of it is open (`KeyState`).

use crate::model::{ErrorEvent, RequestEvent, Ts};
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// Stamps have one-second resolution on both sides.
pub const TOLERANCE_MS: Ts = 2_000;
/// How far back a request may have started when `$request_time` is not logged.
const UNKNOWN_DURATION_MS: Ts = 600_000;
/// Candidates rejected by the host or peer check before one line's search gives up.
const MAX_REJECTS: usize = 64;

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

/// Hosts compare without case and without a port (in place: candidates are compared many
/// times per line behind a load balancer).
fn host_eq(a: &str, b: &str) -> bool {
    let strip = |h: &str| -> usize {
        h.rsplit_once(':').filter(|(_, p)| p.bytes().all(|c| c.is_ascii_digit())).map_or(h.len(), |x| x.0.len())
    };
    a[..strip(a)].eq_ignore_ascii_case(&b[..strip(b)])
}

/// (client, `METHOD TARGET`): borrowed from the event unless the access log escaped it.
type Key<'a> = (&'a str, Cow<'a, str>);

fn request_key(r: &RequestEvent) -> Option<Key<'_>> {
    let client = r.client().unwrap_or_default();
    let t = match (r.request(), r.method(), r.uri()) {
        (Some(req), _, _) => match unescape(req) {
            Cow::Borrowed(b) => Cow::Borrowed(target(b)),
            Cow::Owned(o) => Cow::Owned(target(&o).to_string()),
        },
        (None, Some(m), Some(u)) => Cow::Owned(format!("{m} {}", unescape(u))),
        _ => return None,
    };
    Some((client, t))
}

fn line_key(e: &ErrorEvent) -> Option<(&str, &str)> {
    Some((e.client().unwrap_or_default(), target(e.request()?)))
}

fn peer_ok(r: &RequestEvent, e: &ErrorEvent) -> bool {
    match (r.upstream_addr(), e.peer()) {
        (Some(addrs), Some(peer)) => addrs.split([',', ' ']).any(|a| a == peer),
        _ => true,
    }
}

fn host_ok(r: &RequestEvent, e: &ErrorEvent) -> bool {
    match (r.host(), e.host().or(e.server())) {
        (Some(a), Some(b)) => host_eq(a, b) || e.server().is_some_and(|s| host_eq(a, s)),
        _ => true,
    }
}

fn window(r: &RequestEvent) -> (Ts, Ts) {
    let start = if r.request_time.is_some() { r.start_ts() } else { r.ts - UNKNOWN_DURATION_MS };
    (start - TOLERANCE_MS, r.ts + TOLERANCE_MS)
}

/// Lines that can belong to a request: upstream failures, the application/client lines
/// that explain a 500 or a 499, and nginx's own refusals (`limit_req`, `limit_conn`).
pub fn joinable(e: &ErrorEvent) -> bool {
    e.joinable()
}

/// Ordered candidates: (time, index).
pub(super) use super::ordered::Ordered;

/// The entry of `set` nearest to `t` within `[lo, hi]` that `ok` accepts: by distance
/// `|time - t|`, then index; `None` if there is none, or after `MAX_REJECTS` rejections.
pub(super) fn nearest(set: &Ordered, t: Ts, lo: Ts, hi: Ts, ok: impl Fn(usize) -> bool) -> Option<usize> {
    if lo > hi {
        return None;
    }
    let mid = t.clamp(lo, hi);
    let mut up = set.range((mid, 0)..=(hi, usize::MAX)).copied().peekable();
    let mut down = set.range((lo, 0)..(mid, 0)).rev().copied().peekable();
    // Below `t` the set runs backwards, so equal stamps come highest index first: take each
    // stamp's entries as a group, in index order.
    let mut group: std::collections::VecDeque<(Ts, usize)> = Default::default();
    let mut rejects = 0;
    loop {
        if group.is_empty() {
            if let Some(first) = down.next() {
                group.push_front(first);
                while let Some(x) = down.next_if(|x| x.0 == first.0) {
                    group.push_front(x);
                }
            }
        }
        let key = |x: &(Ts, usize)| ((x.0 - t).abs(), x.1);
        let pick_up = match (up.peek(), group.front()) {
            (Some(u), Some(d)) => key(u) <= key(d),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let (_, i) = if pick_up { up.next() } else { group.pop_front() }?;
        if ok(i) {
            return Some(i);
        }
        rejects += 1;
        if rejects >= MAX_REJECTS {
            return None;
        }
    }
}

/// Line kinds a request has separate room for.
const FAILURE: usize = 0;
const OTHER: usize = 1;

/// The sweep's state of one (client, request line): how many of its requests (`Keys::order`)
/// have been let in, and the sets of those still open. The sets are allocated when a line
/// first lets a request of the key in and freed when every request let in has ended more
/// than the tolerance before the sweep's time: at most the keys active around one moment
/// hold sets (with the flat key list, the 8 GiB bench corpus's peak went from 211/213 to
/// 203/206 MiB).
#[derive(Default)]
struct KeyState {
    next: u32,
    sets: Option<Box<Sets>>,
}

#[derive(Default)]
struct Sets {
    /// Requests whose window has opened, by end time.
    open: Ordered,
    /// The same, while they have room for a line of each kind.
    room: [Ordered; 2],
}

impl Sets {
    fn is_empty(&self) -> bool {
        self.open.first().is_none() && self.room.iter().all(|r| r.first().is_none())
    }
}

/// Failing requests grouped by (client, request line): one number per distinct key, each
/// request's key, and each key's requests in one flat list by window start (a map of keys to
/// their own lists, with room for sets, held 80 bytes per key and an allocation per list).
struct Keys<'a> {
    of_key: FxHashMap<Key<'a>, u32>,
    /// Per request, its key's number (`NONE` without a key).
    key_of: Vec<u32>,
    /// Key `k`'s requests: `order[start[k]..start[k + 1]]`.
    start: Vec<u32>,
    order: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl<'a> Keys<'a> {
    fn new(requests: &'a [RequestEvent]) -> Keys<'a> {
        let mut of_key: FxHashMap<Key, u32> = FxHashMap::default();
        let mut count: Vec<u32> = Vec::new();
        let key_of: Vec<u32> = requests
            .iter()
            .map(|r| {
                let Some(k) = request_key(r) else { return NONE };
                let fresh = of_key.len() as u32;
                let n = *of_key.entry(k).or_insert(fresh);
                if n == fresh {
                    count.push(0);
                }
                count[n as usize] += 1;
                n
            })
            .collect();
        let mut start = Vec::with_capacity(count.len() + 1);
        let mut acc = 0u32;
        start.push(0);
        for c in &count {
            acc += c;
            start.push(acc);
        }
        // `count` becomes each key's fill position.
        let n = count.len();
        count.copy_from_slice(&start[..n]);
        let mut order = vec![0u32; acc as usize];
        for (i, &k) in key_of.iter().enumerate().filter(|x| *x.1 != NONE) {
            order[count[k as usize] as usize] = i as u32;
            count[k as usize] += 1;
        }
        for k in 0..count.len() {
            order[start[k] as usize..start[k + 1] as usize].sort_by_key(|&i| (window(&requests[i as usize]).0, i));
        }
        Keys { of_key, key_of, start, order }
    }
}

pub fn join(requests: &[RequestEvent], errors: &[ErrorEvent]) -> Joined {
    let keys = Keys::new(requests);
    let mut states: Vec<KeyState> = (0..keys.start.len() - 1).map(|_| KeyState::default()).collect();
    let mut room: Vec<[usize; 2]> = requests.iter().map(|r| [r.failed_attempts().max(1), 1]).collect();
    let mut lines_of = vec![Vec::new(); requests.len()];
    let mut request_of = vec![None; errors.len()];
    // Requests are sorted by end time: those before `ended` have left their key's sets.
    let mut ended = 0;
    // `errors` is sorted by time: one pass is a sweep.
    for (li, e) in errors.iter().enumerate() {
        if !joinable(e) {
            continue;
        }
        let Some((client, tgt)) = line_key(e) else { continue };
        let t = e.ts;
        while let Some(r) = requests.get(ended).filter(|r| r.ts < t - TOLERANCE_MS) {
            if let Some(st) = keys.key_of.get(ended).and_then(|&k| states.get_mut(k as usize)) {
                if let Some(sets) = st.sets.as_deref_mut() {
                    let key = (r.ts, ended);
                    sets.open.remove(&key);
                    sets.room.iter_mut().for_each(|s| _ = s.remove(&key));
                    if sets.is_empty() {
                        st.sets = None;
                    }
                }
            }
            ended += 1;
        }
        let mut k: Key = (client, Cow::Borrowed(tgt));
        if !keys.of_key.contains_key(&k) {
            // Access logs that log `$uri` (ingress-nginx's `upstreaminfo`) have no query
            // string: the error log's request line without its query may match.
            match tgt.split_once('?') {
                Some((path, _)) => k.1 = Cow::Borrowed(path),
                None => continue,
            }
        }
        let Some(&kn) = keys.of_key.get(&k) else { continue };
        let mine = &keys.order[keys.start[kn as usize] as usize..keys.start[kn as usize + 1] as usize];
        let st = &mut states[kn as usize];
        while let Some(&ri) = mine.get(st.next as usize) {
            let ri = ri as usize;
            if window(&requests[ri]).0 > t {
                break;
            }
            st.next += 1;
            let key = (requests[ri].ts, ri);
            let sets = st.sets.get_or_insert_with(Default::default);
            sets.open.insert(key);
            for (set, n) in sets.room.iter_mut().zip(room[ri]) {
                if n > 0 {
                    set.insert(key);
                }
            }
        }
        // No request of the key has opened yet: nothing to join.
        let Some(st) = st.sets.as_deref_mut() else { continue };
        // Requests that ended more than the tolerance before this line can take no later one.
        for set in std::iter::once(&mut st.open).chain(st.room.iter_mut()) {
            while set.first().is_some_and(|f| f.0 < t - TOLERANCE_MS) {
                set.pop_first();
            }
        }
        let ok = |ri: usize| peer_ok(&requests[ri], e) && host_ok(&requests[ri], e);
        let role = if e.failure { FAILURE } else { OTHER };
        // Ends no earlier than half the tolerance before the line first, then the rest.
        let best = [&st.room[role], &st.open].into_iter().find_map(|set| {
            nearest(set, t, t - TOLERANCE_MS / 2, Ts::MAX, ok)
                .or_else(|| nearest(set, t, t - TOLERANCE_MS, t - TOLERANCE_MS / 2 - 1, ok))
        });
        if let Some(ri) = best {
            lines_of[ri].push(li);
            request_of[li] = Some(ri);
            room[ri][role] = room[ri][role].saturating_sub(1);
            if room[ri][role] == 0 {
                st.room[role].remove(&(requests[ri].ts, ri));
            }
        }
    }
    drop(states);
    drop(keys);
    // Fallback: same client and host, a failure line with no request of its own, nearest in
    // time within the request; each line once.
    let mut loose = vec![false; requests.len()];
    let mut free: FxHashMap<&str, Ordered> = FxHashMap::default();
    for (i, e) in errors.iter().enumerate() {
        if let (None, true, Some(c)) = (request_of[i], e.failure, e.client()) {
            free.entry(c).or_default().insert((e.ts, i));
        }
    }
    for (ri, r) in requests.iter().enumerate() {
        if !lines_of[ri].is_empty() {
            continue;
        }
        let Some(set) = r.client().and_then(|c| free.get_mut(c)) else { continue };
        let (a, b) = window(r);
        let ok = |i: usize| host_ok(r, &errors[i]) && peer_ok(r, &errors[i]);
        if let Some(li) = nearest(set, r.ts, a, b, ok) {
            set.remove(&(errors[li].ts, li));
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
    use crate::model::texts::Texts;

    #[test]
    fn unescaping() {
        assert_eq!(unescape("GET /a\\x22b HTTP/1.1"), "GET /a\"b HTTP/1.1");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("bad \\xZZ"), "bad \\xZZ");
        assert!(host_eq("Shop.test:8080", "shop.test"));
        assert_eq!(target("GET /x?y HTTP/1.1"), "GET /x?y");
    }

    #[test]
    fn a_uri_without_its_query_joins_the_request_line_with_it() {
        let mut r = request(1_000_000, "c", "/x", vec![502]);
        r.texts = request_texts("c", "/x", None);
        let e = line(1_000_000, "c", "/x?a=1");
        assert_eq!(join(&[r], &[e]).lines_of, vec![vec![0]]);
    }

    #[test]
    fn nearest_breaks_ties_by_index_on_both_sides() {
        let set: Ordered = [(100, 7), (100, 3), (90, 9), (90, 4), (110, 5), (130, 1)].into_iter().collect();
        // 90 and 110 are both 10 away from 100's neighbours; at 100 itself the lower index.
        assert_eq!(nearest(&set, 100, 0, 1000, |_| true), Some(3));
        assert_eq!(nearest(&set, 100, 0, 1000, |i| i != 3 && i != 7), Some(4));
        assert_eq!(nearest(&set, 100, 0, 1000, |i| i > 4 && i != 7), Some(5));
        assert_eq!(nearest(&set, 100, 0, 1000, |i| i == 9 || i == 1), Some(9));
        assert_eq!(nearest(&set, 100, 101, 1000, |_| true), Some(5));
        assert_eq!(nearest(&set, 200, 0, 120, |_| true), Some(5));
        assert_eq!(nearest(&set, 100, 120, 110, |_| true), None);
        assert_eq!(nearest(&set, 100, 0, 1000, |_| false), None);
    }

    fn request(ts: Ts, client: &str, uri: &str, attempts: Vec<u16>) -> RequestEvent {
        RequestEvent {
            ts,
            source: 0,
            line: 0,
            status: 502,
            texts: request_texts(client, uri, Some(&format!("GET {uri} HTTP/1.1"))),
            upstream_logged: true,
            request_time: Some(0.5),
            upstream_response_time: None,
            upstream_connect_time: None,
            upstream_header_time: None,
            attempts: attempts.into(),
            user_agent: None,
            origin: None,
        }
    }

    /// method, uri, request, client, host, upstream_addr, upstream_status.
    fn request_texts(client: &str, uri: &str, request: Option<&str>) -> Texts<7> {
        Texts::new([Some("GET"), Some(uri), request, Some(client), Some("h"), Some("10.0.0.1:9000"), None])
    }

    fn line(ts: Ts, client: &str, uri: &str) -> ErrorEvent {
        ErrorEvent {
            ts,
            source: 1,
            line: 0,
            lines: 1,
            level: crate::model::Level::Error,
            pid: 1,
            conn: None,
            signature: "connect_refused",
            errno: Some(111),
            phase: crate::model::Phase::Connecting,
            class: crate::model::CauseClass::C1,
            cause: crate::model::Cause::BackendDown,
            failure: true,
            texts: Texts::new([
                Some(client),
                None,
                Some(&format!("GET {uri} HTTP/1.1")),
                Some("fastcgi://10.0.0.1:9000"),
                Some("h"),
                None,
            ]),
            message: "".into(),
            origin: None,
        }
    }

    #[test]
    fn one_line_per_request_of_a_shared_key_and_room_for_each_failed_attempt() {
        // 300 requests of one key in three seconds, a line each: one to one, in order.
        let reqs: Vec<RequestEvent> =
            (0..300).map(|i| request(1_000_000 + (i / 100) * 1000, "lb", "/h", vec![502])).collect();
        let errs: Vec<ErrorEvent> = (0..300).map(|i| line(1_000_000 + (i / 100) * 1000, "lb", "/h")).collect();
        let j = join(&reqs, &errs);
        for (i, l) in j.lines_of.iter().enumerate() {
            assert_eq!(l, &vec![i], "request {i}");
        }
        assert!(j.loose.iter().all(|x| !x));
        // A request retried on two peers that both failed takes two lines; a third line of
        // the same key goes to the other request.
        let reqs = vec![request(2_000_000, "c", "/r", vec![502, 502]), request(2_000_000, "c", "/r", vec![502])];
        let errs: Vec<ErrorEvent> = (0..3).map(|_| line(1_999_800, "c", "/r")).collect();
        let j = join(&reqs, &errs);
        assert_eq!(j.lines_of, vec![vec![0, 1], vec![2]]);
        // More lines than room: the extra one joins the nearest request anyway.
        let errs: Vec<ErrorEvent> = (0..4).map(|_| line(1_999_800, "c", "/r")).collect();
        assert_eq!(join(&reqs, &errs).lines_of, vec![vec![0, 1, 3], vec![2]]);
        // Outside the request's window (it lasted 0.5 s, plus 2 s of tolerance): no join.
        let far = vec![line(2_000_000 - 2_600, "c", "/r")];
        assert!(join(&reqs, &far).request_of[0].is_none());
    }

    /// A key's sets are freed once its requests have all ended (lines of other keys move
    /// the sweep on) and made afresh for its later requests: the join is the same as when
    /// they were kept, and an ended request takes no late line.
    #[test]
    fn ended_requests_leave_their_key_and_later_ones_still_join() {
        let reqs = vec![
            request(1_000_000, "a", "/x", vec![502]),
            request(1_050_000, "b", "/y", vec![502]),
            request(1_100_000, "a", "/x", vec![502]),
            request(1_100_000, "a", "/x", vec![504]),
        ];
        let errs = vec![
            line(1_000_000, "a", "/x"),
            line(1_050_000, "b", "/y"),
            // Key `a` again, long after its first request ended: not that one.
            line(1_099_800, "a", "/x"),
            line(1_100_000, "a", "/x"),
            line(1_100_000, "a", "/x"),
        ];
        let j = join(&reqs, &errs);
        assert_eq!(j.lines_of, vec![vec![0], vec![1], vec![2, 4], vec![3]]);
        assert!(j.loose.iter().all(|x| !x));
        // A line that comes when every request of its key has ended joins none.
        let late = vec![line(1_000_000, "a", "/x"), line(1_050_000, "b", "/y"), line(1_060_000, "a", "/x")];
        let j = join(&reqs[..2], &late);
        assert_eq!(j.request_of, vec![Some(0), Some(1), None]);
    }
}
