//! `--nginx-conf`: the `log_format` and `access_log` directives of an nginx configuration.
//!
//! Input: the path of nginx.conf; `include` directives are followed (globs, relative to the
//! main file's directory, as nginx resolves them against its prefix). Output: `ConfFormats`:
//! every named format (the concatenated string) and every access log path with its format
//! name. Invariants: never fails on syntax it does not understand (it only needs these two
//! directives); an unreadable file is an error naming it; include loops are cut.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConfFormats {
    /// (name, format string), in the order defined.
    pub formats: Vec<(String, String)>,
    /// (path pattern, format name); `$variables` in the path become `*`.
    pub access_logs: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read nginx configuration {path}: {source}")]
pub struct ConfError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

pub fn read(path: &Path) -> Result<ConfFormats, ConfError> {
    let mut out = ConfFormats::default();
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut seen = HashSet::new();
    read_file(path, &base, &mut out, &mut seen, 0)?;
    Ok(out)
}

fn read_file(
    path: &Path,
    base: &Path,
    out: &mut ConfFormats,
    seen: &mut HashSet<PathBuf>,
    depth: usize,
) -> Result<(), ConfError> {
    let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if depth > 16 || !seen.insert(canon) {
        return Ok(());
    }
    let text = std::fs::read(path).map_err(|e| ConfError { path: path.display().to_string(), source: e })?;
    let text = String::from_utf8_lossy(&text);
    for d in directives(&text) {
        match d.first().map(String::as_str) {
            Some("log_format") if d.len() >= 3 => {
                let mut parts = &d[2..];
                if parts.first().is_some_and(|p| p.starts_with("escape=")) {
                    parts = &parts[1..];
                }
                out.formats.push((d[1].clone(), parts.concat()));
            }
            Some("access_log") if d.len() >= 2 && d[1] != "off" => {
                let fmt = d.get(2).filter(|f| !f.contains('=')).cloned().unwrap_or_else(|| "combined".into());
                let pat = path_pattern(&d[1]);
                if !pat.starts_with("syslog:") {
                    out.access_logs.push((pat, fmt));
                }
            }
            Some("include") if d.len() >= 2 => {
                let inc = if Path::new(&d[1]).is_absolute() { PathBuf::from(&d[1]) } else { base.join(&d[1]) };
                let mut files: Vec<PathBuf> = match glob::glob(&inc.to_string_lossy()) {
                    Ok(g) => g.filter_map(Result::ok).collect(),
                    Err(_) => vec![inc.clone()],
                };
                files.sort();
                for f in files {
                    read_file(&f, base, out, seen, depth + 1)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn path_pattern(p: &str) -> String {
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if chars.peek() == Some(&'{') {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
            } else {
                while chars.peek().is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    chars.next();
                }
            }
            out.push('*');
        } else {
            out.push(c);
        }
    }
    out
}

/// Split configuration text into directives (word lists ended by `;`); block openers
/// `{` and `}` end a directive too (their words are discarded).
fn directives(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            ';' => out.push(std::mem::take(&mut cur)),
            '{' | '}' => cur.clear(),
            '\'' | '"' => {
                let mut s = String::new();
                while let Some(ch) = chars.next() {
                    if ch == '\\' {
                        if let Some(n) = chars.next() {
                            match n {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                _ => s.push(n),
                            }
                        }
                    } else if ch == c {
                        break;
                    } else {
                        s.push(ch);
                    }
                }
                cur.push(s);
            }
            c if c.is_whitespace() => {}
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || n == ';' || n == '{' || n == '}' {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                cur.push(s);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_logs_with_include() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            "http {\n  # a comment; with semicolon\n  log_format upc '$remote_addr [$time_local] '\n     '\"$request\" $status';\n  log_format j escape=json '{\"s\":$status,\"t\":\"$time_iso8601\"}';\n  include conf.d/*.conf;\n  access_log /var/log/nginx/access.log;\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("conf.d/shop.conf"),
            "server { server_name shop; access_log /var/log/nginx/shop.log upc buffer=32k; access_log /var/log/nginx/$host.log j; access_log off; }",
        )
        .unwrap();
        let c = read(&dir.path().join("nginx.conf")).unwrap();
        assert_eq!(c.formats[0], ("upc".into(), "$remote_addr [$time_local] \"$request\" $status".into()));
        assert_eq!(c.formats[1].1, "{\"s\":$status,\"t\":\"$time_iso8601\"}");
        assert_eq!(
            c.access_logs,
            vec![
                ("/var/log/nginx/shop.log".into(), "upc".into()),
                ("/var/log/nginx/*.log".into(), "j".into()),
                ("/var/log/nginx/access.log".into(), "combined".into()),
            ]
        );
        assert!(read(&dir.path().join("missing.conf")).is_err());
    }
}
