//! Phase timings for profiling: with `UPCAUSE_TIMINGS` set, how long each phase took and the
//! anonymous memory after it, on stderr. Input: a phase name and its start. Output: one line.

/// With `UPCAUSE_TIMINGS` set, print how long a phase took (for profiling; stderr).
pub fn timing(phase: &str, since: std::time::Instant) {
    if std::env::var_os("UPCAUSE_TIMINGS").is_some() {
        let anon = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("RssAnon:").map(|v| v.trim().to_string())))
            .unwrap_or_default();
        eprintln!("upcause: {phase}: {:.3} s (anonymous memory after it: {anon})", since.elapsed().as_secs_f64());
    }
}
