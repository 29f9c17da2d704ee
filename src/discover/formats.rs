//! The access-log formats of a run and the rules that assign them to files (`--log-format`,
//! `--nginx-conf`), plus the built-ins tried on every other access log.
//!
//! Input: compiled formats with their globs or conf paths. Output: for a file, the format a
//! rule assigns, or the candidates to sniff with. Invariants: a format source is compiled
//! once and shared; rules are tried in a fixed order (explicit globs, conf paths, default).

use crate::parse::access::AccessFormat;
use globset::{Glob, GlobMatcher};
use std::path::Path;

/// The access-log formats of a run and the rules that assign them to files.
#[derive(Default)]
pub struct FormatSet {
    pub formats: Vec<AccessFormat>,
    /// `--log-format GLOB=...`: matched against the file name and the full path.
    explicit: Vec<(GlobMatcher, usize)>,
    /// `--nginx-conf` access_log paths: (full-path matcher, file-name matcher, format).
    conf: Vec<(GlobMatcher, GlobMatcher, usize)>,
    /// `--log-format` without a glob.
    default: Option<usize>,
}

impl FormatSet {
    /// Add a format; returns its index (formats with the same source are shared).
    pub fn add(&mut self, f: AccessFormat) -> usize {
        if let Some(i) = self.formats.iter().position(|g| g.source == f.source) {
            return i;
        }
        self.formats.push(f);
        self.formats.len() - 1
    }

    pub fn add_explicit(&mut self, glob: Option<&str>, f: AccessFormat) -> Result<(), String> {
        let i = self.add(f);
        match glob {
            Some(g) => {
                let m = Glob::new(g).map_err(|e| format!("bad glob {g:?} in --log-format: {e}"))?.compile_matcher();
                self.explicit.push((m, i));
            }
            None => self.default = Some(i),
        }
        Ok(())
    }

    pub fn add_conf(&mut self, path_pattern: &str, f: AccessFormat) {
        let i = self.add(f);
        let name = Path::new(path_pattern).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let (Ok(full), Ok(base)) = (Glob::new(path_pattern), Glob::new(&name)) {
            self.conf.push((full.compile_matcher(), base.compile_matcher(), i));
        }
    }

    /// Built-in candidates tried when nothing assigns a format (`parse::formats`), after the
    /// formats the run was given.
    pub(super) fn ensure_builtins(&mut self) -> Vec<usize> {
        let mut c: Vec<usize> = (0..self.formats.len()).collect();
        for f in crate::parse::formats::builtins() {
            let i = self.add(f);
            if !c.contains(&i) {
                c.push(i);
            }
        }
        c
    }

    /// The format assigned by rule to `path` whose rotation set is `set` (the current name).
    pub(super) fn assigned(&self, path: &Path, set: &str) -> Option<(usize, &'static str)> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (m, i) in &self.explicit {
            if m.is_match(&name) || m.is_match(path) || m.is_match(set) {
                return Some((*i, "--log-format glob"));
            }
        }
        let set_name = Path::new(set).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (full, base, i) in &self.conf {
            if full.is_match(path) || full.is_match(set) || base.is_match(&set_name) || base.is_match(&name) {
                return Some((*i, "--nginx-conf access_log"));
            }
        }
        self.default.map(|i| (i, "--log-format"))
    }
}
