//! The `upcause` binary: parse options, run, map the result to an exit code.

use clap::Parser;
use upcause::cli::{Cli, Command};

fn main() {
    // A closed stdout (`upcause ... | head`) is not an error: exit quietly with 0.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        eprintln!("upcause: internal error: {msg}");
    }));
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
