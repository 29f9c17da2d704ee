//! The allocator's tuning: mimalloc (the binary's global allocator, `main.rs`) told to give
//! freed memory back to the system within milliseconds.
//!
//! Input: the process's environment and arguments, first thing in `main`. Output: either the
//! process goes on (tuned already, or tuning impossible), or it is replaced (`exec`) by the
//! same program with the same arguments and mimalloc's options added to its environment.
//! Invariants: an option the user set is never overridden; a process whose environment holds
//! every option goes on, so there is at most one `exec`; any failure (no `/proc/self/exe`, an
//! `exec` error) leaves the process running untuned, never stopped.
//!
//! Why: a run's memory is a sequence of large structures freed as the next is built (scan
//! rows, then tables, then row files). With its defaults mimalloc keeps freed pages for a
//! second and commits arenas eagerly; measured on the noisy 2 GiB bench corpus (2 threads,
//! peak anonymous memory): glibc 243-264 MiB, mimalloc by default 293-300 MiB, mimalloc with
//! lazy arena commit and a 2 ms purge delay 196-197 MiB, and 3-5% faster than glibc (8 GiB:
//! glibc 647 MiB, tuned 475 MiB). A purge delay of 0 made the 8 GiB run 40% slower (system
//! time 2.6 -> 8.7 s: every free returned pages the next allocation faulted in again). Later,
//! with the run's peak much lower, 2 ms against 10 ms, alternated: the plain 1 GiB file on one
//! thread 60.5 k -> 50.7 k page faults and 0.920 -> 0.897 s (medians of 6; again 0.951 ->
//! 0.933 s of 7), the noisy 2 GiB corpus 2.47 -> 2.43 s, its peak 121 -> 130 MiB, the 8 GiB
//! corpus 189-191 -> 194-196 MiB (under the 200 MiB target; 20 ms went past it, 202-205).
//! Back to 2 ms a session later: with the scan and the tail faster, 10 ms left the 8 GiB peak
//! at 194-207 MiB (the documented bench 207, over the target), 2 ms 188-191, and the time
//! gained had gone (alternated: noisy 2 GiB 2.641 s at 10 ms, 2.643 s at 2 ms, medians of 5;
//! plain 1 GiB on one thread 1.034 and 1.001 s).
//! mimalloc reads its options from the environment once, while the program loads, before
//! `main`; setting them from `main` takes `mi_option_set`, an `unsafe` foreign call, where
//! the code base keeps a single `unsafe` site (the mmap in `open`). Replacing the process
//! keeps its pid and open files, and costs a few milliseconds per run (50 starts of `upcause
//! --version`: 13.6 ms each against 5.3 ms with the options already set, while a build kept
//! both cores busy), nothing beside a run of seconds.

/// mimalloc's options: lazy arena commit, freed pages returned after 2 ms.
pub const OPTIONS: [(&str, &str); 2] = [("MIMALLOC_ARENA_EAGER_COMMIT", "0"), ("MIMALLOC_PURGE_DELAY", "2")];

/// The options this process's environment still lacks.
fn missing() -> Vec<(&'static str, &'static str)> {
    OPTIONS.into_iter().filter(|(k, _)| std::env::var_os(k).is_none()).collect()
}

/// Re-executes the program with the allocator's options when its environment lacks some;
/// returns only when the process should go on as it is.
#[cfg(unix)]
pub fn tune() {
    use std::os::unix::process::CommandExt;
    let add = missing();
    // Without mimalloc (`--no-default-features`) the options mean nothing.
    if add.is_empty() || !cfg!(feature = "mimalloc") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    // `exec` returns only on failure: then run untuned.
    let _ = cmd.args(args).envs(add).exec();
}

#[cfg(not(unix))]
pub fn tune() {}
