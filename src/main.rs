//! The `upcause` binary: parse options, run, map the result to an exit code.

use clap::Parser;
use upcause::cli::{Cli, Command};

/// mimalloc: 3-5% faster than glibc's allocator here, and with its options (`alloc`) the
/// freed memory goes back to the system instead of staying in the process.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // First: it may replace the process with itself, tuned.
    upcause::alloc::tune();
    // A panic is a bug: say so and let it end the process (exit code 101). A closed stdout
    // (`upcause ... | head`) is not one: the terminal summary stops writing on a broken pipe
    // (`render::terminal::print`), so nothing panics for it.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("upcause: internal error (please report it): {info}");
    }));
    // Lets the tests check that a panic stays a crash whatever its message (debug builds only).
    if cfg!(debug_assertions) {
        if let Some(m) = std::env::var_os("UPCAUSE_TEST_PANIC") {
            panic!("{}", m.to_string_lossy());
        }
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let mem = upcause::memstats::from_env();
    let result: anyhow::Result<i32> = match cli.command {
        Command::Analyze(a) => upcause::config::Config::from_args(&a)
            .map_err(upcause::Error::from)
            .and_then(upcause::run_analyze)
            .map_err(Into::into),
        Command::Compare(a) => upcause::commands::run_compare(a).map_err(Into::into),
        Command::History(a) => upcause::commands::run_history(a).map_err(Into::into),
        Command::Merge(a) => upcause::commands::run_merge(a).map_err(Into::into),
    };
    if let Some(m) = mem {
        m.finish();
    }
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("upcause: {e:#}");
            std::process::exit(1);
        }
    }
}
