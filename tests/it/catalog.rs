//! Issue 14: every message nginx and PHP-FPM can write, from their source code
//! (`../shared/reference/nginx-messages.tsv`, `fpm-messages.tsv`), rendered as a log line the
//! way the program writes it: every upstream-related nginx message must land in a class
//! (`unclassified` counted, target 0), and every FPM message at WARNING, ERROR or ALERT in a specific
//! event (not `other`).

use std::path::PathBuf;
use upcause::classify::Classifier;
use upcause::model::{CauseClass, FpmKind};
use upcause::parse::{fpm, nginx_error};

fn reference(name: &str) -> Option<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference").join(name);
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(t),
        Err(_) => {
            assert!(std::env::var_os("UPCAUSE_REQUIRE_REFERENCE").is_none(), "{} is required but missing", p.display());
            eprintln!("NOTE: {} not present; catalog test not run", p.display());
            None
        }
    }
}

/// A printf-style format of nginx or FPM with its conversions filled in (`%V` a name, numbers
/// `1`, `%%` a percent sign).
fn render(fmt: &str) -> String {
    let b = fmt.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let ch = fmt[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        i += 1;
        if b.get(i) == Some(&b'%') {
            out.push('%');
            i += 1;
            continue;
        }
        // Flags, width, `*`, and nginx's length modifiers, then the conversion.
        while i < b.len()
            && (b"0123456789.*-+ #".contains(&b[i])
                || b"ulzLhjqmtNT".contains(&b[i]) && b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()))
        {
            i += 1;
        }
        let conv = b.get(i).copied().unwrap_or(b's');
        i += 1;
        out.push_str(match conv {
            b'V' | b's' | b'v' => "backend",
            b'p' => "0000000000000001",
            b'x' | b'X' => "ff",
            b'c' => "x",
            b'f' => "1.000",
            _ => "1",
        });
    }
    out
}

/// The `while ...` action a row's context names, if any.
fn action(context: &str) -> Option<String> {
    if context.contains("while resolving") {
        return Some("resolving, resolver: 127.0.0.11:53".into());
    }
    let at = context.find("while ")?;
    let rest = &context[at + 6..];
    let end = rest.find([' ', '(', ';', ')', '/', ',', '"']).map_or(rest.len(), |_| {
        // Up to the first separator after the action words ("reading response header from
        // upstream (or ...").
        ["(", ";", ")", "/", ",", "\"", " or "].iter().filter_map(|s| rest.find(s)).min().unwrap_or(rest.len())
    });
    let a = rest[..end].trim();
    (!a.is_empty()).then(|| a.to_string())
}

#[test]
fn every_upstream_related_nginx_message_lands_in_a_class() {
    let Some(tsv) = reference("nginx-messages.tsv") else { return };
    let c = Classifier::new().unwrap();
    let (mut total, mut upstream, mut unclassified) = (0, 0, Vec::new());
    for row in tsv.lines().skip(1) {
        let f: Vec<&str> = row.split('\t').collect();
        if f.len() < 8 {
            continue;
        }
        let (level, fmt, errno, context) = (f[2], f[3], f[4], f[5]);
        // A caller's text (`ngx_ssl_error`, `ngx_connection_error`, `%s %V`): rendered under
        // the callers' own rows, not a message of its own.
        if ["text", "%s %V", "%V", "%s", "%*s"].contains(&fmt) {
            continue;
        }
        let level = level.split(['|', ' ', '/']).next().unwrap_or("error");
        let level = if ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"].contains(&level) {
            level
        } else {
            "error"
        };
        let mut msg = render(fmt);
        if errno.starts_with("yes") {
            let e = if errno.contains("110") || fmt.contains("timed out") {
                "(110: Connection timed out)"
            } else if fmt.contains("connect()") {
                "(111: Connection refused)"
            } else {
                "(104: Connection reset by peer)"
            };
            msg = format!("{msg} {e}");
        }
        if let Some(a) = action(context) {
            msg = format!("{msg} while {a}");
        }
        let resolver = context.contains("resolver connection log");
        let config = context.starts_with("config");
        if !resolver && !config {
            msg.push_str(", client: 10.0.0.1, server: shop.test, request: \"GET /x HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"shop.test\"");
        }
        let line = format!("2026/11/22 04:14:42 [{level}] 7#7: *5 {msg}");
        let Some(l) = nginx_error::parse(line.as_bytes()) else { panic!("unparsable rendering: {line}") };
        total += 1;
        let got = c.classify(&l);
        if got.class != CauseClass::Info {
            upstream += 1;
        }
        if got.class == CauseClass::Unclassified {
            unclassified.push(line);
        }
    }
    eprintln!("nginx catalog: {total} messages, {upstream} upstream-related, {} unclassified", unclassified.len());
    assert!(total > 400, "{total}");
    assert!(unclassified.is_empty(), "{} unclassified:\n{}", unclassified.len(), unclassified.join("\n"));
}

#[test]
fn every_fpm_warning_error_and_alert_lands_in_a_specific_event() {
    let Some(tsv) = reference("fpm-messages.tsv") else { return };
    let (mut total, mut other) = (0, Vec::new());
    for row in tsv.lines().skip(1) {
        let f: Vec<&str> = row.split('\t').collect();
        if f.len() < 4 || !["ERROR", "ALERT", "WARNING"].iter().any(|l| f[2].starts_with(l)) {
            continue;
        }
        let level = ["ALERT", "ERROR", "WARNING"].into_iter().find(|l| f[2].starts_with(l)).unwrap_or("ERROR");
        let line = format!("[22-Nov-2026 04:14:42] {level}: {}", render(f[3]));
        let l = fpm::parse_line(line.as_bytes()).unwrap_or_else(|| panic!("unparsable rendering: {line}"));
        total += 1;
        if fpm::interpret_at(l.body, l.level).kind == FpmKind::Other {
            other.push(line);
        }
    }
    eprintln!("FPM catalog: {total} messages at WARNING, ERROR or ALERT, {} without a specific event", other.len());
    assert!(total > 200, "{total}");
    assert!(other.is_empty(), "{} without a specific event:\n{}", other.len(), other.join("\n"));
}
