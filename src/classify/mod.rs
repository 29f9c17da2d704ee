//! Classification of nginx error-log entries into signatures and cause classes.
//!
//! Input: a parsed `ErrorLine`. Output: `Classified` (signature id, cause class, default
//! cause, whether it counts as an upstream failure). The signature table is data
//! (`signatures.tsv`, embedded at build time), validated when the `Classifier` is built and
//! in a test that classifies every row's test line. Invariants: built once per run and shared
//! by all threads (read-only); a line is classified by message key + errno + `while` phase +
//! level together (taxonomy.md section 7); a line that looks upstream-related but matches no
//! row is `UNCLASSIFIED` (counted, listed), never dropped.

use crate::model::{Cause, CauseClass, Level, Phase};
use crate::parse::nginx_error::ErrorLine;
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use memchr::memmem;

const TABLE: &str = include_str!("signatures.tsv");

#[derive(Debug, Clone, Copy, PartialEq)]
enum LevelRule {
    Any,
    ErrorPlus,
    Warn,
    InfoMinus,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Signature {
    pub id: &'static str,
    pub class: CauseClass,
    /// The cause, where the class has more than one (`class:cause` in the table).
    pub cause: Cause,
    pub failure: bool,
    pub key: &'static str,
    /// A second text the line must hold, its searcher built once (a searcher built per call,
    /// what `memmem::find` does, was most of this test's cost on a noisy error log, perf).
    also: Option<memmem::Finder<'static>>,
    /// `None`: any errno; `Some(empty)`: none allowed; else one of these.
    errno: Option<Vec<i32>>,
    /// Bit set of `Phase` discriminants; 0 = any.
    phases: u32,
    level: LevelRule,
    pub test: &'static str,
}

/// The verdict for one line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classified {
    pub signature: &'static str,
    pub class: CauseClass,
    pub cause: Cause,
    pub failure: bool,
}

pub struct Classifier {
    sigs: Vec<Signature>,
    /// The distinct keys, in pattern order.
    keys: Vec<&'static str>,
    nfa: AhoCorasick,
    dfa: std::sync::OnceLock<Option<AhoCorasick>>,
    /// Pattern id -> rows with that key, in table order.
    rows_by_key: Vec<Vec<usize>>,
}

#[derive(Debug, thiserror::Error)]
#[error("signature table row {row}: {msg}")]
pub struct TableError {
    pub row: usize,
    pub msg: String,
}

fn phase_bits(spec: &str) -> Result<u32, String> {
    if spec == "*" {
        return Ok(0);
    }
    let mut bits = 0u32;
    for p in spec.split('|') {
        let phases: &[Phase] = match p {
            "none" => &[Phase::None],
            "connect" => &[Phase::Connecting],
            "ssl" => &[Phase::SslHandshakingUpstream],
            "send" => &[Phase::SendingRequest],
            "header" => &[Phase::ReadingResponseHeader],
            "body" => &[Phase::ReadingUpstream, Phase::StreamFromUpstream, Phase::StreamProxying],
            "upgraded" => &[Phase::ProxyingUpgraded],
            "resolving" => &[Phase::Resolving],
            "client" => &[
                Phase::SendingToClient,
                Phase::SendingEarlyHints,
                Phase::ReadingClientHeaders,
                Phase::ReadingClientLine,
                Phase::ReadingClientBody,
                Phase::SslHandshakingClient,
                Phase::StreamFromClient,
                Phase::ClosingRequest,
            ],
            other => return Err(format!("unknown phase {other:?}")),
        };
        for ph in phases {
            bits |= 1 << (*ph as u32);
        }
    }
    Ok(bits)
}

/// glibc/musl/BSD/Windows errno texts and numbers onto Linux numbers (taxonomy 1.5:
/// "match on the errno number first and the text second"; observed.md: musl and BSD differ).
pub fn canonical_errno(num: i32, text: &[u8]) -> i32 {
    const TEXTS: &[(&[u8], i32)] = &[
        (b"Connection refused", 111),
        (b"No such file or directory", 2),
        (b"Permission denied", 13),
        (b"Resource temporarily unavailable", 11),
        (b"Operation would block", 11),
        (b"Connection timed out", 110),
        (b"Operation timed out", 110),
        (b"Connection reset by peer", 104),
        (b"Broken pipe", 32),
        (b"No route to host", 113),
        (b"Network is unreachable", 101),
        (b"Host is down", 112),
        (b"Network is down", 100),
        (b"Cannot assign requested address", 99),
        (b"Can't assign requested address", 99),
        (b"Too many open files in system", 23),
        (b"File table overflow", 23),
        (b"Too many open files", 24),
        (b"No space left on device", 28),
        (b"Operation not permitted", 1),
        (b"Transport endpoint is not connected", 107),
        (b"Socket is not connected", 107),
        (b"Software caused connection abort", 103),
        (b"Cannot allocate memory", 12),
        (b"Out of memory", 12),
        (b"Disk quota exceeded", 122),
    ];
    for (t, n) in TEXTS {
        if text == *t {
            return *n;
        }
    }
    // Windows socket errors, which never collide with Linux numbers.
    match num {
        10061 => 111,
        10060 => 110,
        10054 => 104,
        10065 => 113,
        10051 => 101,
        _ => num,
    }
}

impl Classifier {
    /// Build from the embedded table. Fails only if the table itself is broken (a test
    /// guarantees it is not).
    pub fn new() -> Result<Classifier, TableError> {
        Self::from_table(TABLE)
    }

    fn from_table(table: &'static str) -> Result<Classifier, TableError> {
        let mut sigs = Vec::new();
        let mut header_seen = false;
        for (i, line) in table.lines().enumerate() {
            let row = i + 1;
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if !header_seen {
                header_seen = true;
                continue;
            }
            let f: Vec<&'static str> = line.split('\t').collect();
            let err = |msg: String| TableError { row, msg };
            if f.len() != 9 {
                return Err(err(format!("expected 9 columns, found {}", f.len())));
            }
            let (class, cause) = f[1].split_once(':').map_or((f[1], None), |(c, k)| (c, Some(k)));
            let class = match class {
                "INFO" => CauseClass::Info,
                c => c.parse::<CauseClass>().map_err(err)?,
            };
            let cause = match cause {
                Some(k) => k.parse::<Cause>().map_err(err)?,
                None => class.default_cause(),
            };
            let failure = match f[2] {
                "yes" => true,
                "no" => false,
                o => return Err(err(format!("failure must be yes or no, not {o:?}"))),
            };
            if f[3].is_empty() {
                return Err(err("empty key".into()));
            }
            let errno = match f[5] {
                "*" => None,
                "-" => Some(vec![]),
                list => Some(
                    list.split('|')
                        .map(|n| n.parse::<i32>().map_err(|_| err(format!("bad errno {n:?}"))))
                        .collect::<Result<_, _>>()?,
                ),
            };
            let level = match f[7] {
                "*" => LevelRule::Any,
                "error+" => LevelRule::ErrorPlus,
                "warn" => LevelRule::Warn,
                "info-" => LevelRule::InfoMinus,
                o => return Err(err(format!("bad level rule {o:?}"))),
            };
            if sigs.iter().any(|s: &Signature| s.id == f[0]) {
                return Err(err(format!("duplicate id {:?}", f[0])));
            }
            sigs.push(Signature {
                id: f[0],
                class,
                cause,
                failure,
                key: f[3],
                also: (f[4] != "*").then(|| memmem::Finder::new(f[4])),
                errno,
                phases: phase_bits(f[6]).map_err(err)?,
                level,
                test: f[8],
            });
        }
        let mut keys: Vec<&'static str> = Vec::new();
        let mut rows_by_key: Vec<Vec<usize>> = Vec::new();
        for (i, s) in sigs.iter().enumerate() {
            match keys.iter().position(|k| *k == s.key) {
                Some(p) => rows_by_key[p].push(i),
                None => {
                    keys.push(s.key);
                    rows_by_key.push(vec![i]);
                }
            }
        }
        // The keys' automaton as an NFA here (it checks the keys, and is cheap to build); the
        // DFA that searches the entries is built when the first entry comes (`automaton`).
        let nfa = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .match_kind(MatchKind::Standard)
            .build(&keys)
            .map_err(|e| TableError { row: 0, msg: e.to_string() })?;
        Ok(Classifier { sigs, keys, nfa, dfa: std::sync::OnceLock::new(), rows_by_key })
    }

    /// The automaton entries are searched with: a DFA, built on first use. Every entry of the
    /// error log is searched (a noisy log has hundreds of thousands) and the overlapping
    /// search walks the automaton a byte at a time, which the contiguous NFA does with more
    /// work per byte (about 3,000 instructions an entry against 1,700). Built on first use
    /// because it costs about 20 M instructions (5 ms, 1.3 MB), which a run of access logs
    /// alone never needs. Both find the same matches; should the DFA fail to build, the NFA
    /// searches.
    fn automaton(&self) -> &AhoCorasick {
        self.dfa
            .get_or_init(|| {
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::DFA))
                    .match_kind(MatchKind::Standard)
                    .build(&self.keys)
                    .ok()
            })
            .as_ref()
            .unwrap_or(&self.nfa)
    }

    pub fn signatures(&self) -> &[Signature] {
        &self.sigs
    }

    fn row_fits(&self, s: &Signature, l: &ErrorLine, errno: Option<i32>, phase: Phase, level: Level) -> bool {
        if let Some(a) = &s.also {
            if a.find(l.text).is_none() {
                return false;
            }
        }
        if let Some(list) = &s.errno {
            match errno {
                None if !list.is_empty() => return false,
                Some(e) if !list.contains(&e) => return false,
                _ => {}
            }
        }
        if s.phases != 0 && s.phases & (1 << phase as u32) == 0 {
            return false;
        }
        match s.level {
            LevelRule::Any => true,
            LevelRule::ErrorPlus => level <= Level::Error,
            LevelRule::Warn => level == Level::Warn,
            LevelRule::InfoMinus => level >= Level::Notice,
        }
    }

    /// Classify one parsed entry.
    /// Every signature `classify` can give: the table's, then `unclassified` and `other`.
    pub fn signature_ids(&self) -> Vec<&'static str> {
        self.sigs.iter().map(|s| s.id).chain(["unclassified", "other"]).collect()
    }

    pub fn classify(&self, l: &ErrorLine) -> Classified {
        let errno = l.errno.map(|n| canonical_errno(n, l.errno_text.unwrap_or_default()));
        let phase = l.action.map(Phase::from_action).unwrap_or(Phase::None);
        let level = l.level.unwrap_or(Level::Error);
        // Earliest key in the text first; among equal starts, table order.
        let mut best: Option<(usize, usize)> = None;
        for m in self.automaton().find_overlapping_iter(l.text) {
            let start = m.start();
            if best.is_some_and(|(s, _)| s < start) {
                continue;
            }
            for &r in &self.rows_by_key[m.pattern().as_usize()] {
                if self.row_fits(&self.sigs[r], l, errno, phase, level) {
                    let better = match best {
                        None => true,
                        Some((s, br)) => start < s || (start == s && r < br),
                    };
                    if better {
                        best = Some((start, r));
                    }
                    break;
                }
            }
        }
        if let Some((_, r)) = best {
            let s = &self.sigs[r];
            return Classified { signature: s.id, class: s.class, cause: s.cause, failure: s.failure };
        }
        let upstreamish =
            crate::parse::find!(l.text, b"upstream").is_some() || phase.is_upstream() || l.upstream.is_some();
        if upstreamish && level.at_least_warn() {
            Classified {
                signature: "unclassified",
                class: CauseClass::Unclassified,
                cause: Cause::Unclassified,
                failure: true,
            }
        } else {
            Classified { signature: "other", class: CauseClass::Info, cause: Cause::Info, failure: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::nginx_error::parse;

    #[test]
    fn every_row_classifies_its_own_test_line() {
        let c = Classifier::new().unwrap();
        assert!(c.signatures().len() > 90);
        for s in c.signatures() {
            let l = parse(s.test.as_bytes()).unwrap_or_else(|| panic!("{}: test line does not parse", s.id));
            let got = c.classify(&l);
            assert_eq!(got.signature, s.id, "test line of {} classified as {}", s.id, got.signature);
            assert_eq!(got.class, s.class);
        }
    }

    /// The keys' automaton is a DFA (one step a byte), built on the first entry, small (1.3 MB
    /// for today's table: one for the run, read by every worker), and finds what the NFA finds.
    #[test]
    fn key_automaton_is_a_small_dfa() {
        let c = Classifier::new().unwrap();
        assert!(c.dfa.get().is_none(), "built before the first entry");
        let ac = c.automaton();
        assert_eq!(ac.kind(), AhoCorasickKind::DFA);
        assert!(ac.memory_usage() < 2 << 20, "{} bytes", ac.memory_usage());
        // The same matches as the NFA's, on every signature's test line.
        for s in c.signatures() {
            let text = parse(s.test.as_bytes()).unwrap().text;
            let m =
                |a: &AhoCorasick| a.find_overlapping_iter(text).map(|m| (m.start(), m.pattern())).collect::<Vec<_>>();
            assert_eq!(m(ac), m(&c.nfa), "{}", s.id);
        }
    }

    #[test]
    fn errno_texts_from_other_platforms() {
        let c = Classifier::new().unwrap();
        let musl = "2026/11/22 03:41:07 [error] 1#1: *1 connect() to 10.0.0.1:80 failed (110: Operation timed out) while connecting to upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.1:80/\", host: \"s\"";
        assert_eq!(c.classify(&parse(musl.as_bytes()).unwrap()).class, CauseClass::C17);
        let bsd = "2026/11/22 03:41:07 [error] 1#0: *1 connect() to 10.0.0.1:80 failed (61: Connection refused) while connecting to upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.1:80/\", host: \"s\"";
        assert_eq!(c.classify(&parse(bsd.as_bytes()).unwrap()).class, CauseClass::C1);
        let win = "2026/11/22 03:41:07 [error] 1#0: *1 connect() to 10.0.0.1:80 failed (10061: Unknown error) while connecting to upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.1:80/\", host: \"s\"";
        assert_eq!(c.classify(&parse(win.as_bytes()).unwrap()).signature, "connect_refused");
    }

    #[test]
    fn lines_users_post_land_in_their_class() {
        // Issue 14: lines pasted into public issues that used to fall through.
        let c = Classifier::new().unwrap();
        let ctx = ", client: 172.18.0.1, server: localhost, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/x.sock:\", host: \"localhost\"";
        let stream = ", client: 10.0.0.9, server: 0.0.0.0:3306, upstream: \"10.0.0.5:3306\", bytes from/to client:0/0, bytes from/to upstream:0/0";
        for (line, class, sig) in [
            (format!("2026/11/22 03:41:07 [error] 7#7: *3 connect() to unix:/run/php/x.sock failed (111: Connection refused) while connecting to upstream{ctx}"), CauseClass::C1, "connect_refused"),
            ("2026/11/22 03:41:07 [error] 30#30: send() failed (111: Connection refused) while resolving, resolver: 127.0.0.11:53".into(), CauseClass::C21, "resolver_send_failed"),
            ("2026/11/22 03:41:07 [emerg] 1#1: host not found in resolver \"dns.internal\" in /etc/nginx/nginx.conf:12".into(), CauseClass::C21, "host_not_found_resolver"),
            ("2026/11/22 03:41:07 [emerg] 1#1: socket() 0.0.0.0:80 failed (24: Too many open files)".into(), CauseClass::C20, "listen_socket_failed"),
            (format!("2026/11/22 03:41:07 [crit] 7#7: *3 pwritev() \"/var/cache/nginx/proxy_temp/1/00/0000000001\" failed (28: No space left on device) while reading upstream{ctx}"), CauseClass::C29, "temp_file_pwritev"),
            (format!("2026/11/22 03:41:07 [error] 7#0: *3 kevent() reported about an closed connection (54: Connection reset by peer) while reading response header from upstream{ctx}"), CauseClass::C7, "kevent_closed_upstream"),
            (format!("2026/11/22 03:41:07 [error] 7#7: *3 upstream timed out (110: Connection timed out) while connecting to upstream{stream}"), CauseClass::C17, "timeout_connect"),
            (format!("2026/11/22 03:41:07 [error] 7#7: *3 recv() failed (104: Connection reset by peer) while proxying and reading from upstream{stream}"), CauseClass::C7, "recv_reset_body"),
        ] {
            let l = parse(line.as_bytes()).unwrap();
            let got = c.classify(&l);
            assert_eq!((got.class, got.signature), (class, sig), "{line}");
            if line.contains("bytes from/to") {
                assert_eq!(l.upstream, Some(&b"10.0.0.5:3306"[..]), "{line}");
            }
        }
    }

    #[test]
    fn nginx_s_own_refusals_are_rl_with_their_cause() {
        let c = Classifier::new().unwrap();
        let ctx = ", client: 10.0.0.9, server: shop.test, request: \"POST /login HTTP/1.1\", host: \"shop.test\"";
        for (msg, class, cause) in [
            ("[error] 7#7: *3 limiting requests, excess: 12.837 by zone \"login\"", CauseClass::RL, Cause::RateLimited),
            ("[warn] 7#7: *3 limiting requests, excess: 12.837 by zone \"login\"", CauseClass::RL, Cause::RateLimited),
            ("[error] 7#7: *3 limiting connections by zone \"addr\"", CauseClass::RL, Cause::ConnLimited),
            // Not refused: dry runs, and requests limit_req only delayed.
            (
                "[error] 7#7: *3 limiting requests, dry run, excess: 1.000 by zone \"login\"",
                CauseClass::Info,
                Cause::Info,
            ),
            ("[error] 7#7: *3 limiting connections, dry run, by zone \"addr\"", CauseClass::Info, Cause::Info),
            ("[warn] 7#7: *3 delaying request, excess: 0.500, by zone \"login\"", CauseClass::Info, Cause::Info),
        ] {
            let line = format!("2026/11/22 03:41:07 {msg}{ctx}");
            let got = c.classify(&parse(line.as_bytes()).unwrap());
            assert_eq!((got.class, got.cause, got.failure), (class, cause, false), "{line}");
        }
    }

    #[test]
    fn look_alikes_are_not_failures() {
        let c = Classifier::new().unwrap();
        for (line, want) in [
            ("2026/11/22 03:41:07 [error] 1#1: *1 open() \"/var/www/html/x.png\" failed (2: No such file or directory), client: 1.2.3.4, server: s, request: \"GET /x.png HTTP/1.1\", host: \"s\"", "static_open_failed"),
            ("2026/11/22 03:41:07 [info] 1#1: *1 recv() failed (104: Connection reset by peer) while reading client request line, client: 1.2.3.4, server: 0.0.0.0:80", "recv_client_side"),
            ("2026/11/22 03:41:07 [error] 1#1: *1 FastCGI sent in stderr: \"PHP message: PHP Warning:  upstream timed out in foo\" while reading response header from upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"s\"", "stderr_php_other"),
        ] {
            let got = c.classify(&parse(line.as_bytes()).unwrap());
            assert_eq!(got.signature, want);
            assert!(!got.failure);
        }
    }

    #[test]
    fn unknown_upstream_line_is_unclassified_not_dropped() {
        let c = Classifier::new().unwrap();
        let l = "2026/11/22 03:41:07 [error] 1#1: *1 upstream did something new while reading response header from upstream, client: 1.2.3.4, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"s\"";
        let got = c.classify(&parse(l.as_bytes()).unwrap());
        assert_eq!((got.class, got.failure), (CauseClass::Unclassified, true));
        let other = "2026/11/22 03:41:07 [notice] 1#1: signal process started";
        assert_eq!(c.classify(&parse(other.as_bytes()).unwrap()).signature, "other");
    }

    #[test]
    fn broken_tables_are_rejected() {
        let bad_class = "id\tclass\tfailure\tkey\talso\terrno\tphase\tlevel\ttest\nx\tC99\tyes\tk\t*\t*\t*\t*\tt\n";
        assert!(Classifier::from_table(bad_class).is_err());
        let bad_phase =
            "id\tclass\tfailure\tkey\talso\terrno\tphase\tlevel\ttest\nx\tC1\tyes\tk\t*\t*\tnowhere\t*\tt\n";
        assert!(Classifier::from_table(bad_phase).is_err());
        let dup = "id\tclass\tfailure\tkey\talso\terrno\tphase\tlevel\ttest\nx\tC1\tyes\tk\t*\t*\t*\t*\tt\nx\tC1\tyes\tk\t*\t*\t*\t*\tt\n";
        assert!(Classifier::from_table(dup).is_err());
    }
}
