//! Deterministic corpus generator, shared by the bench (`gen_corpus`) and the tests
//! (`tests/it/week.rs` includes this file as a module).
//!
//! Writes a rotated set of nginx access logs in two formats (`shop.access.log*` in an extended
//! format with upstream fields, for the shop and the admin vhost; `api.access.log*` in
//! `combined`), the nginx error log and the PHP-FPM log, plain and gzip, shaped like a
//! production week: outages of known causes, sizes and lengths (small ones, long sparse ones,
//! overlapping ones), a background trickle of sporadic failures between them (a worker crash,
//! a slow script, an FPM peer resetting a connection with nothing in its log, impatient
//! clients), a noisy error log (bots probing for files, PHP notices relayed by FastCGI,
//! `limit_req` refusals, buffered responses, client-side TLS and timeouts) and FPM chatter
//! (children recycled, pools busy); optionally every client behind one address and a few
//! stamps far from the rest. `truth.json` holds per file its line count, per deeper cause the
//! failing requests, per cause class the upstream-failure error lines, the refusals, and the
//! outage windows with their gateway failures. The same `Config` gives the same bytes.

use flate2::{write::GzEncoder, Compression};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The extended access format of `shop.access.log*` (pass it with --log-format).
pub const SHOP_FORMAT: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time uct="$upstream_connect_time" uht="$upstream_header_time" urt="$upstream_response_time" ua="$upstream_addr" us="$upstream_status" host=$host"#;

/// The first request's time unless `Config::start` says otherwise: 2026-11-26T00:00:00Z. Stamps
/// are in central European time (`stamps::offset`: +01:00, +02:00 in summer), so a corpus
/// started before the last Sunday of October crosses the end of summer time.
pub const START: i64 = 1_795_651_200;
const SOCK: &str = "unix:/run/php/php8.2-fpm.sock";
const ADMIN_PEER: &str = "127.0.0.1:9001";
const API_PEER: &str = "10.0.0.5:8080";

/// What to generate.
#[derive(Clone, Debug)]
pub struct Config {
    pub size_mb: u64,
    pub seed: u64,
    pub days: i64,
    /// Outages spread over the span.
    pub outages: usize,
    /// Sporadic gateway failures per hour between outages (worker crashes, slow scripts,
    /// resets nothing explains); client aborts come on top, per request.
    pub background_per_hour: f64,
    /// A production error log (bots, notices, refusals, client-side lines) and FPM chatter.
    pub noisy: bool,
    /// Every client behind one load-balancer address (no `real_ip`).
    pub one_client: bool,
    /// A few lines stamped years away from the rest (a broken clock).
    pub far_stamps: bool,
    /// Rotated sets with gzip (the bench) or every file plain (quick tests).
    pub gzip: bool,
    /// UTC seconds of the first request (`START`).
    pub start: i64,
    /// How far FPM's clock is ahead of nginx's, in seconds (a container in another zone, a
    /// host whose clock drifted): FPM's stamps are written that much later than the moment.
    pub fpm_clock_s: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            size_mb: 2048,
            seed: 42,
            days: 4,
            outages: 10,
            background_per_hour: 6.0,
            noisy: true,
            one_client: false,
            far_stamps: false,
            gzip: true,
            start: START,
            fpm_clock_s: 0,
        }
    }
}

// The generator's random numbers and log stamps (in their own file to keep this one short).
#[path = "corpus_stamps.rs"]
mod stamps;
use stamps::{error_stamp, fpm_stamp, time_local, Rng};

/// A rotated set: `files` files covering equal time slices, the newest `plain` ones plain.
struct Set {
    start: i64,
    files: usize,
    plain: usize,
    span: i64,
    writers: Vec<Option<Box<dyn Write>>>,
    paths: Vec<PathBuf>,
    lines: Vec<u64>,
    /// Latest time written: a line stamped a little earlier (FPM logs a slow request after
    /// the fact) goes to the current file, never back into a closed one.
    last: i64,
    /// Seconds added to each line's FPM stamp (`Config::fpm_clock_s`; files still rotate by
    /// the true time, as logrotate does).
    clock: i64,
}

impl Set {
    fn new(dir: &Path, name: &str, files: usize, plain: usize, (start, span): (i64, i64)) -> Set {
        let paths = (0..files)
            .map(|age| {
                let n = if age == 0 { name.to_string() } else { format!("{name}.{age}") };
                dir.join(if age >= plain { format!("{n}.gz") } else { n })
            })
            .collect();
        Set {
            start,
            files,
            plain,
            span,
            writers: (0..files).map(|_| None).collect(),
            paths,
            lines: vec![0; files],
            last: start,
            clock: 0,
        }
    }

    fn age(&self, t: i64) -> usize {
        let slice = (self.span / self.files as i64).max(1);
        let i = ((t - self.start) / slice).clamp(0, self.files as i64 - 1) as usize;
        self.files - 1 - i
    }

    fn write(&mut self, t: i64, line: &str) {
        self.last = self.last.max(t);
        let age = self.age(self.last);
        // Older files are finished before newer ones start: close them as time moves on.
        for a in age + 1..self.files {
            if let Some(mut w) = self.writers[a].take() {
                w.flush().unwrap();
            }
        }
        if self.writers[age].is_none() {
            let f = std::fs::File::create(&self.paths[age]).unwrap();
            let w: Box<dyn Write> = if age >= self.plain {
                Box::new(BufWriter::with_capacity(1 << 20, GzEncoder::new(f, Compression::new(1))))
            } else {
                Box::new(BufWriter::with_capacity(1 << 20, f))
            };
            self.writers[age] = Some(w);
        }
        let w = self.writers[age].as_mut().unwrap();
        // Every FPM line opens with the stamp of `t` (22 bytes): the skewed clock's instead.
        let line = match (self.clock, line.get(22..)) {
            (0, _) | (_, None) => std::borrow::Cow::Borrowed(line),
            (c, Some(rest)) => std::borrow::Cow::Owned(format!("{}{rest}", fpm_stamp(t + c))),
        };
        w.write_all(line.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        self.lines[age] += 1;
    }

    fn finish(&mut self) {
        for w in self.writers.iter_mut() {
            if let Some(mut w) = w.take() {
                w.flush().unwrap();
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    FpmStopped,
    PoolExhausted,
    SlowScript,
    Terminated,
    Segfault,
    ApiDown,
    Dns,
    HeaderTooBig,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::FpmStopped => "fpm_socket_missing",
            Kind::PoolExhausted => "fpm_pool_exhausted",
            Kind::SlowScript => "slow_backend",
            Kind::Terminated => "fpm_request_terminated",
            Kind::Segfault => "worker_crash",
            Kind::ApiDown => "backend_down",
            Kind::Dns => "dns_failure",
            Kind::HeaderTooBig => "header_too_big",
        }
    }

    /// The API's outages hit the api vhost, the others the shop's PHP.
    fn api(self) -> bool {
        matches!(self, Kind::ApiDown | Kind::Dns | Kind::HeaderTooBig)
    }
}

struct Outage {
    kind: Kind,
    start: i64,
    end: i64,
    frac: f64,
    failures: u64,
}

#[derive(Default)]
struct Truth {
    request_causes: BTreeMap<String, u64>,
    line_causes: BTreeMap<String, u64>,
    requests: u64,
    refused: u64,
    aborts: u64,
    background: u64,
}

impl Truth {
    fn fail(&mut self, cls: &str, cause: &str) {
        *self.request_causes.entry(format!("{cause}[{cls}]")).or_insert(0) += 1;
    }
    fn line(&mut self, cls: &str, cause: &str) {
        *self.line_causes.entry(format!("{cause}[{cls}]")).or_insert(0) += 1;
    }
}

const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "curl/8.5.0",
];

const MIN_OVER_BACKGROUND: f64 = 30.0;

const KINDS: [Kind; 8] = [
    Kind::FpmStopped,
    Kind::PoolExhausted,
    Kind::SlowScript,
    Kind::Terminated,
    Kind::Segfault,
    Kind::ApiDown,
    Kind::Dns,
    Kind::HeaderTooBig,
];

/// The outages: spread over the span with jitter, of varied lengths (1 minute to half an
/// hour) and intensities (a few percent of requests to all), every fifth starting inside the
/// one before it.
///
/// An outage fails at least `MIN_OVER_BACKGROUND` times the background's share of its
/// requests: on a production week (8 M requests, 1,200 sporadic failures) the faintest,
/// 2% of the PHP requests, is over a hundred times the background; a small corpus with the
/// same failures per hour has a denser background per request, and the fractions are raised
/// to keep that proportion (the 2 GiB bench keeps its own).
fn outages(cfg: &Config, span: i64, rng: &mut Rng, p_background: f64) -> Vec<Outage> {
    let n = cfg.outages;
    let lengths = [120, 60, 300, 900, 1800, 180, 600];
    let fracs = [1.0, 0.3, 0.05, 0.6, 0.02, 0.15, 1.0, 0.4];
    let mut v: Vec<Outage> = Vec::new();
    for i in 0..n {
        let kind = KINDS[i % KINDS.len()];
        let dur = lengths[i % lengths.len()];
        let mut start = cfg.start + span * (2 * i as i64 + 1) / (2 * n as i64 + 1) + rng.below(1800) as i64;
        if i % 5 == 4 {
            if let Some(prev) = v.last() {
                start = prev.start + (prev.end - prev.start) / 3;
            }
        }
        let frac = match kind {
            Kind::FpmStopped | Kind::ApiDown => 1.0,
            _ => f64::max(fracs[i % fracs.len()], (MIN_OVER_BACKGROUND * p_background).min(1.0)),
        };
        v.push(Outage { kind, start, end: start + dur, frac, failures: 0 });
    }
    v
}

/// Generate the corpus into `out`; returns `truth.json`'s value (also written there).
pub fn generate(out: &Path, cfg: &Config) -> serde_json::Value {
    std::fs::create_dir_all(out).unwrap();
    let mut rng = Rng(cfg.seed);
    let span = cfg.days.max(1) * 86_400;
    // About 245 bytes per request on average across both formats, the error and FPM logs.
    let requests = (cfg.size_mb * (1 << 20) / 245).max(1);
    let step = span as f64 / requests as f64;
    let per_hour = requests as f64 / (span as f64 / 3600.0);
    // Background failures come from PHP requests of the shop and admin vhosts (about 45% of
    // the traffic): the per-request chance that gives `background_per_hour` in all.
    let p_background = (cfg.background_per_hour / (0.45 * per_hour)).min(0.5);
    let (plain, files) = if cfg.gzip { ([4, 3, 2, 2], [12, 10, 6, 4]) } else { ([1, 1, 1, 1], [1, 1, 1, 1]) };
    let mut shop = Set::new(out, "shop.access.log", files[0], plain[0], (cfg.start, span));
    let mut api = Set::new(out, "api.access.log", files[1], plain[1], (cfg.start, span));
    let mut err = Set::new(out, "error.log", files[2], plain[2], (cfg.start, span));
    let mut fpm = Set::new(out, "php-fpm.log", files[3], plain[3], (cfg.start, span));
    fpm.clock = cfg.fpm_clock_s;
    let mut truth = Truth::default();
    let mut inc = outages(cfg, span, &mut rng, p_background);
    let mut fired = vec![false; inc.len()];
    let mut ended = vec![false; inc.len()];
    let mut pid = 20_000u64;
    let (mut last_crash, mut last_reset) = (i64::MIN / 2, i64::MIN / 2);

    let start = cfg.start;
    fpm.write(start, &format!("{} NOTICE: fpm is running, pid 1001", fpm_stamp(start)));
    fpm.write(start, &format!("{} NOTICE: ready to handle connections", fpm_stamp(start)));
    let far = [requests / 3, requests / 3 + 1, 2 * requests / 3];

    for n in 0..requests {
        let t = start + (n as f64 * step) as i64;
        truth.requests += 1;
        for i in 0..inc.len() {
            let x = &inc[i];
            if !fired[i] && t >= x.start {
                fired[i] = true;
                match x.kind {
                    Kind::FpmStopped => {
                        fpm.write(t, &format!("{} NOTICE: Terminating ...", fpm_stamp(t)));
                        fpm.write(t, &format!("{} NOTICE: exiting, bye-bye!", fpm_stamp(t)));
                    }
                    Kind::PoolExhausted => fpm.write(
                        t,
                        &format!(
                            "{} WARNING: [pool www] server reached pm.max_children setting (50), consider raising it",
                            fpm_stamp(t)
                        ),
                    ),
                    _ => {}
                }
            }
            if fired[i] && !ended[i] && t >= x.end {
                ended[i] = true;
                if x.kind == Kind::FpmStopped {
                    fpm.write(t, &format!("{} NOTICE: fpm is running, pid {}", fpm_stamp(t), 1002 + i));
                    fpm.write(t, &format!("{} NOTICE: ready to handle connections", fpm_stamp(t)));
                }
            }
        }
        let vr = rng.below(100);
        let (is_shop, is_admin) = (vr < 50, (50..60).contains(&vr));
        let client = if cfg.one_client {
            "10.9.9.9".to_string()
        } else {
            format!("10.{}.{}.{}", rng.below(4) + 1, rng.below(250) + 1, rng.below(250) + 1)
        };
        let agent = AGENTS[rng.below(4) as usize];
        let c = n + 1;
        let uri = if is_admin {
            format!("/admin/report.php?page={}&id={n}", rng.below(50))
        } else if is_shop {
            match rng.below(10) {
                0..=5 => format!("/product/{}?ref=home&id={n}", rng.below(90_000) + 1000),
                6..=7 => format!("/cart/add.php?sku={}&id={n}", rng.below(5000)),
                8 => format!("/search.php?q=shoes+{}&id={n}", rng.below(100)),
                _ => format!("/static/img/{}.png", rng.below(2000)),
            }
        } else {
            format!("/api/v1/orders/{}?id={n}", rng.below(1_000_000))
        };
        let host = if is_admin {
            "admin.example.com"
        } else if is_shop {
            "shop.example.com"
        } else {
            "api.example.com"
        };
        let in_shop_log = is_shop || is_admin;
        let request = format!("GET {uri} HTTP/1.1");
        let php = in_shop_log && !uri.starts_with("/static/");
        let es = error_stamp(t);
        if cfg.far_stamps && far.contains(&n) {
            // A broken clock: a line stamped three years ahead.
            err.write(t, &format!("{} [warn] 812#812: *{c} upstream server temporarily disabled while connecting to upstream{}", error_stamp(t + 3 * 365 * 86_400), format_args!(", client: {client}, server: shop.example.com, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://{SOCK}:\", host: \"shop.example.com\"")));
        }
        let ctx = |up: &str| {
            format!(", client: {client}, server: {host}, request: \"{request}\", upstream: \"{up}\", host: \"{host}\"")
        };
        let peer = if is_admin { ADMIN_PEER } else { SOCK };
        let fcgi = if is_admin { format!("fastcgi://{ADMIN_PEER}") } else { format!("fastcgi://{SOCK}:") };
        // Does this request fail in an active outage?
        let fail = (0..inc.len()).find(|&i| {
            let x = &inc[i];
            t >= x.start && t < x.end && (if x.kind.api() { !in_shop_log } else { is_shop && php })
        });
        let fail = fail.filter(|&i| rng.chance(inc[i].frac));
        let quiet = !inc.iter().any(|x| t >= x.start - 120 && t < x.end + 900);
        let (status, rt, ua, us): (u16, String, String, String);
        if let Some(i) = fail {
            inc[i].failures += 1;
            let kind = inc[i].kind;
            let http = format!("http://{API_PEER}{uri}");
            let script = "/var/www/shop/index.php";
            let (cls, cause, line) = match kind {
                Kind::FpmStopped => ("C2", "fpm_socket_missing", format!("{es} [crit] 812#812: *{c} connect() to {SOCK} failed (2: No such file or directory) while connecting to upstream{}", ctx(&fcgi))),
                Kind::PoolExhausted => ("C4", "fpm_pool_exhausted", format!("{es} [error] 812#812: *{c} connect() to {SOCK} failed (11: Resource temporarily unavailable) while connecting to upstream{}", ctx(&fcgi))),
                Kind::SlowScript => {
                    let started = t - 60;
                    fpm.write(started + 5, &format!("{} WARNING: [pool www] child {pid}, script '{script}' (request: \"GET {uri}\") executing too slow (5.001234 sec), logging", fpm_stamp(started + 5)));
                    pid += 1;
                    ("C5", "slow_backend", format!("{es} [error] 812#812: *{c} upstream timed out (110: Connection timed out) while reading response header from upstream{}", ctx(&fcgi)))
                }
                Kind::Terminated => {
                    fpm.write(t, &format!("{} WARNING: [pool www] child {pid}, script '{script}' (request: \"GET {uri}\") execution timed out (30.012345 sec), terminating", fpm_stamp(t)));
                    fpm.write(t, &format!("{} WARNING: [pool www] child {pid} exited on signal 15 (SIGTERM) after 812.5 seconds from start", fpm_stamp(t)));
                    pid += 1;
                    ("C6", "fpm_request_terminated", format!("{es} [error] 812#812: *{c} recv() failed (104: Connection reset by peer) while reading response header from upstream{}", ctx(&fcgi)))
                }
                Kind::Segfault => {
                    fpm.write(t, &format!("{} WARNING: [pool www] child {pid} exited on signal 11 (SIGSEGV - core dumped) after 42.1 seconds from start", fpm_stamp(t)));
                    pid += 1;
                    ("C7", "worker_crash", format!("{es} [error] 812#812: *{c} recv() failed (104: Connection reset by peer) while reading response header from upstream{}", ctx(&fcgi)))
                }
                Kind::ApiDown => ("C1", "backend_down", format!("{es} [error] 812#812: *{c} connect() failed (111: Connection refused) while connecting to upstream{}", ctx(&http))),
                Kind::Dns => ("C21", "dns_failure", format!("{es} [error] 812#812: *{c} orders.internal could not be resolved (3: Host not found), client: {client}, server: {host}, request: \"{request}\", host: \"{host}\"")),
                Kind::HeaderTooBig => ("C26", "header_too_big", format!("{es} [error] 812#812: *{c} upstream sent too big header while reading response header from upstream{}", ctx(&http))),
            };
            err.write(t, &line);
            truth.fail(cls, cause);
            truth.line(cls, cause);
            status = if kind == Kind::SlowScript { 504 } else { 502 };
            rt = match kind {
                Kind::SlowScript => "60.001".into(),
                Kind::Terminated => "30.015".into(),
                _ => "0.000".into(),
            };
            ua = if kind == Kind::Dns {
                "-".into()
            } else if in_shop_log {
                peer.into()
            } else {
                API_PEER.into()
            };
            us = if kind == Kind::Dns { "-".into() } else { status.to_string() };
        } else if php && quiet && rng.chance(p_background) {
            // The background: one sporadic gateway failure now and then.
            truth.background += 1;
            // A worker exit explains a reset within 2 s of it (one pool or another: the logs do
            // not say which pool listens where), so a crash and an unexplained reset are kept
            // apart; the truth would otherwise name what the logs cannot tell.
            // (The admin vhost's PHP runs on the TCP peer that resets.)
            let pick = if is_admin { 2 } else { rng.below(3) };
            let pick = match pick {
                0 if t - last_reset <= 3 => 1,
                2 if t - last_crash <= 3 => 1,
                k => k,
            };
            let (cls, cause, st, time) = match pick {
                0 => {
                    last_crash = t;
                    fpm.write(t, &format!("{} WARNING: [pool www] child {pid} exited on signal 11 (SIGSEGV - core dumped) after 3121.4 seconds from start", fpm_stamp(t)));
                    pid += 1;
                    err.write(t, &format!("{es} [error] 812#812: *{c} recv() failed (104: Connection reset by peer) while reading response header from upstream{}", ctx(&fcgi)));
                    ("C7", "worker_crash", 502, "0.120")
                }
                1 => {
                    let started = t - 60;
                    fpm.write(started + 5, &format!("{} WARNING: [pool www] child {pid}, script '/var/www/shop/search.php' (request: \"GET {uri}\") executing too slow (5.000871 sec), logging", fpm_stamp(started + 5)));
                    pid += 1;
                    err.write(t, &format!("{es} [error] 812#812: *{c} upstream timed out (110: Connection timed out) while reading response header from upstream{}", ctx(&fcgi)));
                    ("C5", "slow_backend", 504, "60.001")
                }
                _ => {
                    // An FPM peer on TCP resets one connection among thousands it answers;
                    // nothing in FPM's log: the logs cannot tell why.
                    last_reset = t;
                    let fc = format!("fastcgi://{ADMIN_PEER}");
                    err.write(t, &format!("{es} [error] 812#812: *{c} recv() failed (104: Connection reset by peer) while reading response header from upstream{}", ctx(&fc)));
                    ("UNEXPLAINED", "unexplained", 502, "0.004")
                }
            };
            if cls != "UNEXPLAINED" {
                truth.line(cls, cause);
            } else {
                truth.line("UNEXPLAINED", "unexplained");
            }
            truth.fail(cls, cause);
            status = st;
            rt = time.into();
            ua = if cls == "UNEXPLAINED" { ADMIN_PEER.into() } else { peer.into() };
            us = st.to_string();
        } else if php && quiet && rng.chance(0.0013) {
            // A client gives up now and then (everyday noise; not an incident).
            truth.aborts += 1;
            err.write(t, &format!("{es} [info] 812#812: *{c} epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too while reading response header from upstream{}", ctx(&fcgi)));
            truth.fail("C28", "client_abort");
            status = 499;
            rt = "2.113".into();
            ua = peer.into();
            us = "-".into();
        } else if cfg.noisy && in_shop_log && rng.chance(0.003) {
            // A bot hammering the login: refused by limit_req (not an upstream failure).
            truth.refused += 1;
            err.write(t, &format!("{es} [error] 812#812: *{c} limiting requests, excess: 10.{:03} by zone \"login\", client: {client}, server: {host}, request: \"{request}\", host: \"{host}\"", rng.below(1000)));
            status = 503;
            rt = "0.000".into();
            ua = "-".into();
            us = "-".into();
        } else {
            let r = rng.below(1000);
            status = match r {
                0..=899 => 200,
                900..=949 => 304,
                950..=989 => 301,
                _ => 404,
            };
            if cfg.noisy {
                // Bots probing for files, PHP's notices relayed by FastCGI, responses buffered
                // to disk, client-side TLS and timeouts: most of a production error log.
                let x = rng.below(10_000);
                match x {
                    0..=149 => err.write(t, &format!("{es} [error] 812#812: *{c} open() \"/var/www/shop/wp-login.php\" failed (2: No such file or directory), client: {client}, server: {host}, request: \"GET /wp-login.php HTTP/1.1\", host: \"{host}\"")),
                    150..=229 if php => err.write(t, &format!("{es} [error] 812#812: *{c} FastCGI sent in stderr: \"PHP message: PHP Warning:  Undefined array key \"sku\" in /var/www/shop/cart.php on line 41\" while reading response header from upstream{}", ctx(&fcgi))),
                    230..=279 if php => err.write(t, &format!("{es} [warn] 812#812: *{c} an upstream response is buffered to a temporary file /var/cache/nginx/fastcgi_temp/1/00/00000{} while reading upstream{}", n % 100_000, ctx(&fcgi))),
                    280..=329 => err.write(t, &format!("{es} [info] 812#812: *{c} SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: {client}, server: 0.0.0.0:443")),
                    330..=359 => err.write(t, &format!("{es} [info] 812#812: *{c} client timed out (110: Connection timed out) while waiting for request, client: {client}, server: 0.0.0.0:443")),
                    _ => {}
                }
            } else if status == 404 && !php && rng.chance(0.5) {
                err.write(t, &format!("{es} [error] 812#812: *{c} open() \"/var/www/shop{uri}\" failed (2: No such file or directory), client: {client}, server: shop.example.com, request: \"{request}\", host: \"shop.example.com\""));
            }
            let ms = if php { 20 + rng.below(400) } else { 1 + rng.below(30) };
            rt = format!("{}.{:03}", ms / 1000, ms % 1000);
            if in_shop_log && !php {
                ua = "-".into();
                us = "-".into();
            } else {
                ua = if in_shop_log { peer.into() } else { API_PEER.into() };
                us = status.to_string();
            }
        }
        let timing = |s: &str| if ua == "-" { "-".to_string() } else { s.to_string() };
        let bytes = if status == 200 { 1000 + rng.below(40_000) } else { 150 };
        let referer = if rng.chance(0.3) { "https://shop.example.com/" } else { "-" };
        if in_shop_log {
            let urt = if ua == "-" { "-".to_string() } else { rt.clone() };
            shop.write(t, &format!(
                "{client} - - [{}] \"{request}\" {status} {bytes} \"{referer}\" \"{agent}\" rt={rt} uct=\"{}\" uht=\"{}\" urt=\"{urt}\" ua=\"{ua}\" us=\"{us}\" host={host}",
                time_local(t), timing("0.000"), timing(&urt)
            ));
        } else {
            api.write(
                t,
                &format!("{client} - - [{}] \"{request}\" {status} {bytes} \"{referer}\" \"{agent}\"", time_local(t)),
            );
        }
        if cfg.noisy && n % 300 == 0 && n > 0 {
            // FPM's chatter: children recycled (pm.max_requests), a busy pool now and then.
            fpm.write(
                t,
                &format!(
                    "{} NOTICE: [pool www] child {pid} exited with code 0 after 3600.123456 seconds from start",
                    fpm_stamp(t)
                ),
            );
            fpm.write(t, &format!("{} NOTICE: [pool www] child {} started", fpm_stamp(t), pid + 1));
            pid += 2;
            if n % 3000 == 0 {
                fpm.write(t, &format!("{} WARNING: [pool www] seems busy (you may need to increase pm.start_servers, or pm.min/max_spare_servers), spawning 8 children, there are 0 idle, and 23 total children", fpm_stamp(t)));
            }
        } else if n % 250_000 == 0 && n > 0 {
            fpm.write(t, &format!("{} NOTICE: [pool www] child {pid} started", fpm_stamp(t)));
            pid += 1;
        }
    }
    for s in [&mut shop, &mut api, &mut err, &mut fpm] {
        s.finish();
    }
    let mut files = BTreeMap::new();
    for s in [&shop, &api, &err, &fpm] {
        for (p, l) in s.paths.iter().zip(&s.lines) {
            if p.exists() {
                files.insert(p.file_name().unwrap().to_string_lossy().into_owned(), *l);
            }
        }
    }
    let outages: Vec<serde_json::Value> = inc
        .iter()
        .map(|x| {
            serde_json::json!({
                "cause": x.kind.name(),
                "start_ms": x.start * 1000,
                "end_ms": x.end * 1000,
                "failures": x.failures,
            })
        })
        .collect();
    let truth_json = serde_json::json!({
        "seed": cfg.seed,
        "size_mb": cfg.size_mb,
        "days": cfg.days,
        "noisy": cfg.noisy,
        "requests": truth.requests,
        "client_aborts": truth.aborts,
        "refused": truth.refused,
        "background_failures": truth.background,
        "shop_format": SHOP_FORMAT,
        "files": files,
        "request_causes": truth.request_causes,
        "error_line_causes": truth.line_causes,
        "outages": outages,
    });
    std::fs::write(out.join("truth.json"), serde_json::to_vec_pretty(&truth_json).unwrap()).unwrap();
    truth_json
}
