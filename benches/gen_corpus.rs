//! Deterministic corpus generator for the end-to-end bench (`benches/run.sh`).
//!
//! Writes a rotated set of nginx access logs in two formats (`shop.access.log*` in an extended
//! format with upstream fields, `api.access.log*` in `combined`), the nginx error log and the
//! PHP-FPM log, plain and gzip, with incidents of known causes and everyday noise, plus
//! `truth.json`: per file its line count, per deeper cause the failing requests, per cause
//! class the upstream-failure error lines. The same arguments give the same bytes.
//!
//! Usage: cargo run --release --example gen_corpus -- OUT_DIR [SIZE_MB] [SEED]

use flate2::{write::GzEncoder, Compression};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The extended access format of `shop.access.log*` (pass it with --log-format).
pub const SHOP_FORMAT: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time uct="$upstream_connect_time" uht="$upstream_header_time" urt="$upstream_response_time" ua="$upstream_addr" us="$upstream_status" host=$host"#;

const TZ_OFF: i64 = 3600; // +01:00
const START: i64 = 1_795_651_200; // 2026-11-20T00:00:00Z
const SPAN: i64 = 4 * 86_400;
const SOCK: &str = "unix:/run/php/php8.2-fpm.sock";
const API_PEER: &str = "10.0.0.5:8080";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn wall(t: i64) -> (i64, u32, u32, i64, i64, i64) {
    let w = t + TZ_OFF;
    let (y, m, d) = civil(w.div_euclid(86_400));
    let s = w.rem_euclid(86_400);
    (y, m, d, s / 3600, s / 60 % 60, s % 60)
}

fn time_local(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0100", MON[m as usize - 1])
}

fn error_stamp(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("{y}/{m:02}/{d:02} {h:02}:{mi:02}:{s:02}")
}

fn fpm_stamp(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("[{d:02}-{}-{y} {h:02}:{mi:02}:{s:02}]", MON[m as usize - 1])
}

/// A rotated set: `files` files covering equal time slices, the newest `plain` ones plain.
struct Set {
    files: usize,
    plain: usize,
    writers: Vec<Option<Box<dyn Write>>>,
    paths: Vec<PathBuf>,
    lines: Vec<u64>,
    /// Latest time written: a line stamped a little earlier (FPM logs a slow request after
    /// the fact) goes to the current file, never back into a closed one.
    last: i64,
}

impl Set {
    fn new(dir: &Path, name: &str, files: usize, plain: usize) -> Set {
        let paths = (0..files)
            .map(|age| {
                let n = if age == 0 { name.to_string() } else { format!("{name}.{age}") };
                dir.join(if age >= plain { format!("{n}.gz") } else { n })
            })
            .collect();
        Set { files, plain, writers: (0..files).map(|_| None).collect(), paths, lines: vec![0; files], last: START }
    }

    fn age(&self, t: i64) -> usize {
        let slice = SPAN / self.files as i64;
        let i = ((t - START) / slice).clamp(0, self.files as i64 - 1) as usize;
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

struct Incident {
    kind: Kind,
    start: i64,
    end: i64,
    frac: f64,
}

#[derive(Default)]
struct Truth {
    request_causes: BTreeMap<String, u64>,
    line_causes: BTreeMap<String, u64>,
    requests: u64,
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("bench-corpus"));
    let size_mb: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2048);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42);
    std::fs::create_dir_all(&out).unwrap();
    let mut rng = Rng(seed);
    // About 245 bytes per request on average across both formats.
    let requests = size_mb * (1 << 20) / 245;
    let step = SPAN as f64 / requests as f64;

    let mut shop = Set::new(&out, "shop.access.log", 12, 4);
    let mut api = Set::new(&out, "api.access.log", 10, 3);
    let mut err = Set::new(&out, "error.log", 6, 2);
    let mut fpm = Set::new(&out, "php-fpm.log", 4, 2);
    let mut truth = Truth::default();

    let kinds = [
        Kind::FpmStopped,
        Kind::PoolExhausted,
        Kind::SlowScript,
        Kind::Terminated,
        Kind::Segfault,
        Kind::ApiDown,
        Kind::Dns,
        Kind::HeaderTooBig,
        Kind::PoolExhausted,
        Kind::Segfault,
    ];
    let incidents: Vec<Incident> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let start = START + SPAN * (2 * i as i64 + 1) / (2 * kinds.len() as i64 + 1);
            let dur = 120 + 60 * (i as i64 % 4);
            let frac = match k {
                Kind::FpmStopped | Kind::ApiDown => 1.0,
                Kind::SlowScript | Kind::Terminated => 0.05,
                _ => 0.3,
            };
            Incident { kind: *k, start, end: start + dur, frac }
        })
        .collect();
    // Stateful events at incident edges.
    let mut fired = vec![false; incidents.len()];
    let mut ended = vec![false; incidents.len()];
    let mut pid = 20_000u64;
    let mut noise_499 = 0u64;

    fpm.write(START, &format!("{} NOTICE: fpm is running, pid 1001", fpm_stamp(START)));
    fpm.write(START, &format!("{} NOTICE: ready to handle connections", fpm_stamp(START)));

    for n in 0..requests {
        let t = START + (n as f64 * step) as i64;
        truth.requests += 1;
        for (i, inc) in incidents.iter().enumerate() {
            if !fired[i] && t >= inc.start {
                fired[i] = true;
                match inc.kind {
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
            if fired[i] && !ended[i] && t >= inc.end {
                ended[i] = true;
                if inc.kind == Kind::FpmStopped {
                    fpm.write(t, &format!("{} NOTICE: fpm is running, pid {}", fpm_stamp(t), 1002 + i));
                    fpm.write(t, &format!("{} NOTICE: ready to handle connections", fpm_stamp(t)));
                }
            }
        }
        let active = incidents.iter().find(|x| t >= x.start && t < x.end);
        let is_shop = rng.chance(0.6);
        let client = format!("10.{}.{}.{}", rng.below(4) + 1, rng.below(250) + 1, rng.below(250) + 1);
        let agent = AGENTS[rng.below(4) as usize];
        let id = n;
        let c = n + 1;
        let uri = if is_shop {
            match rng.below(10) {
                0..=5 => format!("/product/{}?ref=home&id={id}", rng.below(90_000) + 1000),
                6..=7 => format!("/cart/add.php?sku={}&id={id}", rng.below(5000)),
                8 => format!("/search.php?q=shoes+{}&id={id}", rng.below(100)),
                _ => format!("/static/img/{}.png", rng.below(2000)),
            }
        } else {
            format!("/api/v1/orders/{}?id={id}", rng.below(1_000_000))
        };
        let request = format!("GET {uri} HTTP/1.1");
        let php = is_shop && !uri.starts_with("/static/");
        // Does this request fail in the active incident?
        let fail = active.filter(|inc| {
            let mine = match inc.kind {
                Kind::ApiDown | Kind::Dns | Kind::HeaderTooBig => !is_shop,
                _ => php,
            };
            mine && rng.chance(inc.frac)
        });
        let (status, rt, ua, us, urt, uht): (u16, String, String, String, String, String);
        if let Some(inc) = fail {
            let kind = inc.kind;
            let host = if is_shop { "shop.example.com" } else { "api.example.com" };
            let ctx = |up: &str| {
                format!(
                    ", client: {client}, server: {host}, request: \"{request}\", upstream: \"{up}\", host: \"{host}\""
                )
            };
            let fcgi = format!("fastcgi://{SOCK}:");
            let http = format!("http://{API_PEER}{}", uri);
            let es = error_stamp(t);
            let script = "/var/www/shop/index.php";
            let (cls, cause, line) = match kind {
                Kind::FpmStopped => (
                    "C2",
                    "fpm_socket_missing",
                    format!("{es} [crit] 812#812: *{c} connect() to {SOCK} failed (2: No such file or directory) while connecting to upstream{}", ctx(&fcgi)),
                ),
                Kind::PoolExhausted => (
                    "C4",
                    "fpm_pool_exhausted",
                    format!("{es} [error] 812#812: *{c} connect() to {SOCK} failed (11: Resource temporarily unavailable) while connecting to upstream{}", ctx(&fcgi)),
                ),
                Kind::SlowScript => {
                    let started = t - 60;
                    fpm.write(started + 5, &format!(
                        "{} WARNING: [pool www] child {pid}, script '{script}' (request: \"GET {uri}\") executing too slow (5.001234 sec), logging",
                        fpm_stamp(started + 5)));
                    pid += 1;
                    ("C5", "slow_backend", format!("{es} [error] 812#812: *{c} upstream timed out (110: Connection timed out) while reading response header from upstream{}", ctx(&fcgi)))
                }
                Kind::Terminated => {
                    fpm.write(t, &format!(
                        "{} WARNING: [pool www] child {pid}, script '{script}' (request: \"GET {uri}\") execution timed out (30.012345 sec), terminating",
                        fpm_stamp(t)));
                    fpm.write(t, &format!("{} WARNING: [pool www] child {pid} exited on signal 15 (SIGTERM) after 812.5 seconds from start", fpm_stamp(t)));
                    pid += 1;
                    ("C6", "fpm_request_terminated", format!("{es} [error] 812#812: *{c} recv() failed (104: Connection reset by peer) while reading response header from upstream{}", ctx(&fcgi)))
                }
                Kind::Segfault => {
                    fpm.write(t, &format!("{} WARNING: [pool www] child {pid} exited on signal 11 (SIGSEGV - core dumped) after 42.1 seconds from start", fpm_stamp(t)));
                    pid += 1;
                    ("C7", "worker_crash", format!("{es} [error] 812#812: *{c} recv() failed (104: Connection reset by peer) while reading response header from upstream{}", ctx(&fcgi)))
                }
                Kind::ApiDown => (
                    "C1",
                    "backend_down",
                    format!("{es} [error] 812#812: *{c} connect() failed (111: Connection refused) while connecting to upstream{}", ctx(&http)),
                ),
                Kind::Dns => (
                    "C21",
                    "dns_failure",
                    format!("{es} [error] 812#812: *{c} orders.internal could not be resolved (3: Host not found), client: {client}, server: {host}, request: \"{request}\", host: \"{host}\""),
                ),
                Kind::HeaderTooBig => (
                    "C26",
                    "header_too_big",
                    format!("{es} [error] 812#812: *{c} upstream sent too big header while reading response header from upstream{}", ctx(&http)),
                ),
            };
            err.write(t, &line);
            truth.fail(cls, cause);
            truth.line(cls, cause);
            status = match kind {
                Kind::SlowScript => 504,
                _ => 502,
            };
            rt = if kind == Kind::SlowScript {
                "60.001".into()
            } else if kind == Kind::Terminated {
                "30.015".into()
            } else {
                "0.000".into()
            };
            ua = if kind == Kind::Dns {
                "-".to_string()
            } else if is_shop {
                SOCK.to_string()
            } else {
                API_PEER.to_string()
            };
            us = if kind == Kind::Dns { "-".to_string() } else { status.to_string() };
            urt = rt.clone();
            uht = "-".to_string();
        } else if php && !incidents.iter().any(|x| t >= x.start - 60 && t < x.end + 900) && rng.chance(0.0004) {
            // A client gives up now and then (everyday noise; not an incident).
            noise_499 += 1;
            err.write(t, &format!(
                "{} [info] 812#812: *{c} epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too while reading response header from upstream, client: {client}, server: shop.example.com, request: \"{request}\", upstream: \"fastcgi://{SOCK}:\", host: \"shop.example.com\"",
                error_stamp(t)));
            truth.fail("C28", "client_abort");
            status = 499;
            rt = "2.113".into();
            ua = SOCK.into();
            us = "-".into();
            urt = "2.113".into();
            uht = "-".into();
        } else {
            let r = rng.below(1000);
            status = match r {
                0..=899 => 200,
                900..=949 => 304,
                950..=989 => 301,
                _ => 404,
            };
            if status == 404 && !php && rng.chance(0.5) {
                err.write(t, &format!(
                    "{} [error] 812#812: *{c} open() \"/var/www/shop{uri}\" failed (2: No such file or directory), client: {client}, server: shop.example.com, request: \"{request}\", host: \"shop.example.com\"",
                    error_stamp(t).as_str()));
            }
            if php && rng.chance(0.002) {
                err.write(t, &format!(
                    "{} [error] 812#812: *{c} FastCGI sent in stderr: \"PHP message: PHP Warning:  Undefined array key \"sku\" in /var/www/shop/cart.php on line 41\" while reading response header from upstream, client: {client}, server: shop.example.com, request: \"{request}\", upstream: \"fastcgi://{SOCK}:\", host: \"shop.example.com\"",
                    error_stamp(t)));
            }
            let ms = if php { 20 + rng.below(400) } else { 1 + rng.below(30) };
            rt = format!("{}.{:03}", ms / 1000, ms % 1000);
            if is_shop && !php {
                ua = "-".into();
                us = "-".into();
                urt = "-".into();
                uht = "-".into();
            } else {
                ua = if is_shop { SOCK.into() } else { API_PEER.into() };
                us = status.to_string();
                urt = format!("{}.{:03}", (ms - 1) / 1000, (ms - 1) % 1000);
                uht = urt.clone();
            }
        }
        let bytes = if status == 200 { 1000 + rng.below(40_000) } else { 150 };
        let referer = if rng.chance(0.3) { "https://shop.example.com/" } else { "-" };
        if is_shop {
            shop.write(t, &format!(
                "{client} - - [{}] \"{request}\" {status} {bytes} \"{referer}\" \"{agent}\" rt={rt} uct=\"{}\" uht=\"{uht}\" urt=\"{urt}\" ua=\"{ua}\" us=\"{us}\" host=shop.example.com",
                time_local(t),
                if ua == "-" { "-" } else { "0.000" }
            ));
        } else {
            api.write(
                t,
                &format!("{client} - - [{}] \"{request}\" {status} {bytes} \"{referer}\" \"{agent}\"", time_local(t)),
            );
        }
        if n % 250_000 == 0 && n > 0 {
            // FPM's background chatter.
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
    let truth_json = serde_json::json!({
        "seed": seed,
        "size_mb": size_mb,
        "requests": truth.requests,
        "client_aborts": noise_499,
        "shop_format": SHOP_FORMAT,
        "files": files,
        "request_causes": truth.request_causes,
        "error_line_causes": truth.line_causes,
    });
    std::fs::write(out.join("truth.json"), serde_json::to_vec_pretty(&truth_json).unwrap()).unwrap();
    eprintln!("wrote {} requests into {}", truth.requests, out.display());
}
