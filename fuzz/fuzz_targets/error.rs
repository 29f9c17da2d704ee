//! nginx error-log parser and the signature classifier: entry detection, continuation
//! rules, the full layout parse, then classification of whatever parsed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use upcause::classify::Classifier;
use upcause::parse::nginx_error;

fn classifier() -> &'static Classifier {
    static C: OnceLock<Classifier> = OnceLock::new();
    C.get_or_init(|| Classifier::new().unwrap())
}

fuzz_target!(|data: &[u8]| {
    // Whole input as one (possibly multi-line) entry, then line by line.
    let _ = nginx_error::has_context(data);
    if let Some(l) = nginx_error::parse(data) {
        let _ = classifier().classify(&l);
    }
    for line in data.split(|&c| c == b'\n') {
        let _ = nginx_error::is_entry_start(line);
        let _ = nginx_error::opens_continuation(line);
        if let Some(l) = nginx_error::parse(line) {
            let _ = upcause::model::time::parse_nginx_error_wall(l.stamp);
            let _ = classifier().classify(&l);
        }
    }
});
