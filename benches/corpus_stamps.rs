//! The corpus generator's deterministic random numbers (splitmix64) and the stamps of its
//! three log kinds (access `$time_local`, nginx error log, PHP-FPM), in the corpus's zone
//! (`super::TZ_OFF`). Input: seconds since the epoch; output: the stamp text.

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

fn wall(t: i64) -> (i64, u32, u32, i64, i64, i64) {
    let w = t + super::TZ_OFF;
    let (y, m, d) = upcause::model::time::civil_from_days(w.div_euclid(86_400));
    let s = w.rem_euclid(86_400);
    (y, m, d, s / 3600, s / 60 % 60, s % 60)
}

pub fn time_local(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0100", MON[m as usize - 1])
}

pub fn error_stamp(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("{y}/{m:02}/{d:02} {h:02}:{mi:02}:{s:02}")
}

pub fn fpm_stamp(t: i64) -> String {
    let (y, m, d, h, mi, s) = wall(t);
    format!("[{d:02}-{}-{y} {h:02}:{mi:02}:{s:02}]", MON[m as usize - 1])
}
