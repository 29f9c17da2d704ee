//! PHP-FPM master-log and slow-log parsers: every line through the master-log layouts and
//! the message interpreter, and the input as one slow-log block.
#![no_main]
use libfuzzer_sys::fuzz_target;
use upcause::parse::fpm;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&c| c == b'\n').collect();
    for line in &lines {
        let _ = fpm::is_stamped(line);
        if let Some(l) = fpm::parse_line(line) {
            if let Some(st) = l.stamp {
                let _ = upcause::model::time::parse_fpm_wall(st);
            }
            let _ = fpm::interpret(l.body);
        }
        let _ = fpm::interpret(line);
        let _ = fpm::parse_slow_header(line);
    }
    let _ = fpm::parse_slow_block(&lines);
});
