//! Peak memory of a run, split into anonymous and file-backed pages, for the benchmark.
//!
//! Input: the `UPCAUSE_MEMSTATS=PATH` environment variable. Output: at the end of the run, one
//! line in PATH: `peak RSS N MiB (anonymous N MiB, file-backed N MiB, ...); allocator options
//! K=V ...` (the mimalloc options the process ran with, `alloc`). The kernel keeps only
//! the peak of the total (`VmHWM`), so a thread samples `RssAnon` and `RssFile` from
//! `/proc/self/status` every 10 ms and keeps their maxima; a peak shorter than that can be
//! missed, which is why `VmHWM` is printed beside them. Off (no thread) without the variable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub struct MemStats {
    path: String,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<[u64; 3]>,
}

/// Start sampling when `UPCAUSE_MEMSTATS` is set.
pub fn from_env() -> Option<MemStats> {
    let path = std::env::var("UPCAUSE_MEMSTATS").ok().filter(|p| !p.is_empty())?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut peak = [0u64; 3];
        loop {
            let done = s.load(Ordering::Relaxed);
            if let Ok(t) = std::fs::read_to_string("/proc/self/status") {
                for (i, key) in ["RssAnon:", "RssFile:", "VmHWM:"].iter().enumerate() {
                    let kb = t
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .and_then(|v| v.split_whitespace().next()?.parse().ok());
                    peak[i] = peak[i].max(kb.unwrap_or(0));
                }
            }
            if done {
                return peak;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    Some(MemStats { path, stop, thread })
}

impl MemStats {
    /// Stop sampling and write the line.
    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok([anon, file, hwm]) = self.thread.join() {
            let mib = |kb: u64| kb / 1024;
            let options: Vec<String> = crate::alloc::OPTIONS
                .iter()
                .map(|(k, _)| format!("{k}={}", std::env::var(k).unwrap_or_else(|_| "(unset)".into())))
                .collect();
            let line = format!(
                "peak RSS {} MiB (anonymous {} MiB, file-backed {} MiB, sampled every 10 ms); allocator options {}\n",
                mib(hwm),
                mib(anon),
                mib(file),
                options.join(" ")
            );
            if let Err(e) = std::fs::write(&self.path, line) {
                eprintln!("upcause: cannot write {}: {e}", self.path);
            }
        }
    }
}
