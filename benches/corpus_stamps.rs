//! The corpus generator's deterministic random numbers (splitmix64) and the stamps of its
//! three log kinds (access `$time_local`, nginx error log, PHP-FPM), in the corpus's zone:
//! central European time (`offset`), the error and FPM stamps without their offset as nginx
//! and FPM write them. Input: seconds since the epoch; output: the stamp text.

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Central European time's offset at `t`: +02:00 from the last Sunday of March to the last
/// Sunday of October (01:00 UTC both), +01:00 otherwise (EU rules since 1996).
pub fn offset(t: i64) -> i64 {
    use upcause::model::time::{civil_from_days, days_from_civil};
    let (y, _, _) = civil_from_days(t.div_euclid(86_400));
    // The last Sunday of `m`: the month's last day less its weekday (1970-01-01: a Thursday).
    let last_sunday = |m: u32| {
        let last = days_from_civil(y, m + 1, 1) - 1;
        last - (last + 4).rem_euclid(7)
    };
    let (begin, end) = (last_sunday(3) * 86_400 + 3600, last_sunday(10) * 86_400 + 3600);
    if (begin..end).contains(&t) {
        7200
    } else {
        3600
    }
}

fn wall(t: i64) -> (i64, u32, u32, i64, i64, i64) {
    let w = t + offset(t);
    let (y, m, d) = upcause::model::time::civil_from_days(w.div_euclid(86_400));
    let s = w.rem_euclid(86_400);
    (y, m, d, s / 3600, s / 60 % 60, s % 60)
}

pub fn time_local(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0{}00", MON[m as usize - 1], offset(t) / 3600)
}

pub fn error_stamp(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("{y}/{m:02}/{d:02} {h:02}:{mi:02}:{s:02}")
}

pub fn fpm_stamp(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("[{d:02}-{}-{y} {h:02}:{mi:02}:{s:02}]", MON[m as usize - 1])
}
