//! Tests of the time parsing and zones (`time.rs`).
use super::*;

#[test]
fn civil_roundtrip() {
    for z in [-800_000i64, -1, 0, 1, 19_000, 20_414, 2_000_000] {
        let (y, m, d) = civil_from_days(z);
        assert_eq!(days_from_civil(y, m, d), z);
    }
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
}

#[test]
fn nginx_error_stamp() {
    let w = parse_nginx_error_wall(b"2024/05/01 10:00:00 [crit]").unwrap();
    assert_eq!(w, 1_714_557_600);
    assert_eq!(parse_nginx_error_wall(b"2024/13/01 10:00:00"), None);
    assert_eq!(parse_nginx_error_wall(b"2024/05/01 10:00"), None);
    assert_eq!(parse_nginx_error_wall(b"2024-05-01 10:00:00"), None);
}

#[test]
fn fpm_stamp() {
    let w = parse_fpm_wall(b"16-Jun-2023 12:06:33").unwrap();
    assert_eq!(w, 1_686_917_193);
    assert_eq!(parse_fpm_wall(b"16-Jux-2023 12:06:33"), None);
}

#[test]
fn access_stamps() {
    let (s, off) = parse_time_local(b"10/Oct/2000:13:55:36 -0700").unwrap();
    assert_eq!(off, -7 * 3600);
    assert_eq!(s, 971_211_336);
    let (s2, off2) = parse_iso8601(b"2000-10-10T13:55:36-07:00").unwrap();
    assert_eq!((s2, off2), (s, off));
    assert_eq!(parse_msec(b"1700000000.123"), Some(1_700_000_000_123));
    assert_eq!(parse_msec(b"1700000000"), Some(1_700_000_000_000));
    assert_eq!(parse_msec(b"17x"), None);
}

#[test]
fn envelope_stamps() {
    let (w, off, n) = iso_prefix(b"2026-11-22T03:14:42.123456789Z stdout").unwrap();
    assert_eq!((w, off, n), (1_795_317_282_123, Some(0), 30));
    let (w2, off2, n2) = iso_prefix(b"2026-11-22T04:14:42+0100 web1").unwrap();
    assert_eq!((w2 - off2.unwrap() as i64 * 1000, n2), (1_795_317_282_000, 24));
    assert_eq!(iso_prefix(b"2026-11-22T04:14:42.5+01:00").map(|x| (x.0 % 1000, x.2)), Some((500, 27)));
    assert_eq!(iso_prefix(b"2026-11-22 04:14:42 x").map(|x| (x.1, x.2)), Some((None, 19)));
    assert_eq!(iso_prefix(b"2026/11/22 04:14:42"), None);
    assert_eq!(bsd_prefix(b"Nov  2 04:14:42 web1"), Some((11, 2, 15_282_000, 15)));
    assert_eq!(bsd_prefix(b"Nov 22 04:14:42.657608 web1"), Some((11, 22, 15_282_657, 22)));
    assert_eq!(bsd_prefix(b"Nov 32 04:14:42 web1"), None);
    assert_eq!(wall_ms(2026, 11, 22, 15_282_657) / 1000, parse_nginx_error_wall(b"2026/11/22 04:14:42").unwrap());
}

#[test]
fn zones() {
    assert_eq!(Zone::parse("+01:00").unwrap(), Zone::Fixed(3600));
    assert_eq!(Zone::parse("-0530").unwrap(), Zone::Fixed(-19_800));
    assert!(Zone::parse("Mars/Olympus").is_err());
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    // 2026-11-22 03:41:07 in Berlin is 02:41:07Z.
    let wall = parse_nginx_error_wall(b"2026/11/22 03:41:07").unwrap();
    let (utc, fit) = berlin.wall_to_utc(wall);
    assert_eq!((wall - utc, fit), (3600, WallFit::Exact));
    // 2026-10-25 02:30 happens twice in Berlin.
    let amb = parse_nginx_error_wall(b"2026/10/25 02:30:00").unwrap();
    assert_eq!(berlin.wall_to_utc(amb).1, WallFit::Ambiguous);
    assert_eq!(berlin.wall_to_utc(amb).0, amb - 7200);
    // 2026-03-29 02:30 does not exist in Berlin.
    let gap = parse_nginx_error_wall(b"2026/03/29 02:30:00").unwrap();
    assert_eq!(berlin.wall_to_utc(gap), (gap - 3600, WallFit::Gap));
}

#[test]
fn the_repeated_hour_is_read_in_log_order() {
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    let mut c = WallClock::new(&berlin);
    let mut at = |s: &[u8]| {
        let wall = parse_nginx_error_wall(s).unwrap();
        let (ts, _) = c.get(s, parse_nginx_error_wall).unwrap();
        (wall * MS - ts) / (3600 * MS)
    };
    // Offsets from UTC in hours: first pass +2, back to 02:10 is the second pass (+1).
    let got: Vec<i64> = [
        &b"2026/10/25 01:59:00"[..],
        b"2026/10/25 02:30:00",
        b"2026/10/25 02:59:00",
        b"2026/10/25 02:10:00",
        b"2026/10/25 02:30:00",
        b"2026/10/25 03:05:00",
    ]
    .iter()
    .map(|s| at(s))
    .collect();
    assert_eq!(got, [2, 2, 2, 1, 1, 1]);
    // A few seconds of interleaving inside the first pass stays in the first pass.
    let mut c = WallClock::new(&berlin);
    c.get(b"2026/10/25 02:30:05", parse_nginx_error_wall).unwrap();
    let (ts, _) = c.get(b"2026/10/25 02:30:01", parse_nginx_error_wall).unwrap();
    assert_eq!(ts, (parse_nginx_error_wall(b"2026/10/25 02:30:01").unwrap() - 7200) * MS);
}

#[test]
fn rfc3339_output() {
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    assert_eq!(format_rfc3339(1_700_000_000_000, &berlin), "2023-11-14T23:13:20+01:00");
    assert_eq!(format_rfc3339(1_700_000_000_250, &Zone::Fixed(0)), "2023-11-14T22:13:20.250Z");
    assert_eq!(parse_user_time("2023-11-14T23:13:20+01:00", &berlin), Some(1_700_000_000_000));
    assert_eq!(parse_user_time("2023-11-14 23:13:20", &berlin), Some(1_700_000_000_000));
}

#[test]
fn caches_agree_with_parsers() {
    let z = Zone::Fixed(3600);
    let mut c = WallClock::new(&z);
    let a = c.get(b"2026/11/22 03:41:07", parse_nginx_error_wall).unwrap();
    let b = c.get(b"2026/11/22 03:41:07", parse_nginx_error_wall).unwrap();
    let n = c.get(b"2026/11/22 03:41:08", parse_nginx_error_wall).unwrap();
    assert_eq!(a, b);
    assert_eq!(n.0 - a.0, 1000);
    let mut o = OffsetClock::default();
    assert_eq!(o.time_local(b"10/Oct/2000:13:55:36 -0700").unwrap().0, 971_211_336_000);
    assert_eq!(o.time_local(b"10/Oct/2000:13:55:36 -0700").unwrap().0, 971_211_336_000);
}

/// `OffsetClock` kept across lines reads each `$time_local` stamp as `parse_time_local` does:
/// seconds that tick, repeat and jump back, minutes, days, months and years that turn, an
/// offset that changes within a minute, a leap second, seconds that are not two digits or are
/// over 60, and a stamp that is no stamp (the clock keeps its minute across it).
#[test]
fn offset_clock_reads_each_stamp_as_the_parser() {
    const MON: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let text = |utc: i64, off: i32| -> String {
        let w = utc + off as i64;
        let (y, m, d) = civil_from_days(w.div_euclid(86_400));
        let t = w.rem_euclid(86_400);
        let (sign, a) = if off < 0 { ('-', -off) } else { ('+', off) };
        format!(
            "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} {sign}{:02}{:02}",
            MON[m as usize - 1],
            t / 3600,
            t / 60 % 60,
            t % 60,
            a / 3600,
            a / 60 % 60
        )
    };
    let mut stamps: Vec<String> = Vec::new();
    // 2026-12-31 23:58:50 UTC, in steps of 0 to 3 seconds and one back, across the new year.
    let mut t = 1_798_761_530i64;
    for k in 0..400 {
        t += [0, 1, 1, 3, -1, 2][k % 6];
        stamps.push(text(t, [3600, 3600, 3600, -18_000, 0][k / 80]));
    }
    let base = text(t, 0);
    for tail in ["60", "61", "99", "6x", "x6", "-1"] {
        stamps.push(format!("{}{tail}{}", &base[..18], &base[20..]));
    }
    // The same wall-clock minute at another offset.
    stamps.push(format!("{}+0530", &base[..21]));
    stamps.push(format!("{}O{}", &base[..3], &base[4..]));
    stamps.push(base.clone());
    stamps.push(base.replace("Jan", "Jax"));
    stamps.push(base);
    let mut clock = OffsetClock::default();
    for st in &stamps {
        let want = parse_time_local(st.as_bytes()).map(|(s, off)| (s * 1000, off));
        assert_eq!(clock.time_local(st.as_bytes()), want, "{st}");
    }
    assert!(stamps.iter().filter(|s| parse_time_local(s.as_bytes()).is_none()).count() >= 6);
}

/// `StampText` kept across rows in time order writes what a fresh one writes for each: over
/// a daylight-saving change, whole seconds, sub-second stamps, before 1970, and in UTC (`Z`).
#[test]
fn stamp_text_across_rows_is_each_row_alone() {
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    // 2026-10-25 01:00:00 UTC: clocks go back from 03:00 to 02:00 in Berlin.
    let change = 1_792_890_000_000i64;
    let mut ts: Vec<i64> = (-3_000..3_000).map(|k| change + k * 997).collect();
    ts.extend([-1_500, -1_000, -1, 0, 1, 999, 1_000]);
    for zone in [berlin, Zone::Fixed(0), Zone::Fixed(-5 * 3600)] {
        let mut st = StampText::default();
        for &t in &ts {
            assert_eq!(st.format(t, &zone), format_rfc3339(t, &zone), "{t}");
        }
    }
    let mut st = StampText::default();
    let z = Zone::parse("Europe/Berlin").unwrap();
    assert_eq!(st.format(change - 1, &z), "2026-10-25T02:59:59.999+02:00");
    assert_eq!(st.format(change, &z), "2026-10-25T02:00:00+01:00");
    assert_eq!(st.format(change + 5, &z), "2026-10-25T02:00:00.005+01:00");
    assert_eq!(StampText::default().format(-1, &Zone::Fixed(0)), "1969-12-31T23:59:59.999Z");
}

/// The digits written by hand agree with chrono's formatting of the same instant, from year 1
/// to 9999 and at every millisecond shape (none, 1, 10, 100...).
#[test]
fn stamp_text_agrees_with_chrono() {
    let mut st = StampText::default();
    let (lo, hi) = (-62_135_596_800_000i64, 253_402_300_799_999i64);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for k in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let span = (hi - lo) as u64;
        let mut t = lo + (x % span) as i64;
        if k % 3 == 0 {
            t -= t.rem_euclid(1000);
        } else if k % 3 == 1 {
            t -= t.rem_euclid(10);
        }
        let d = chrono::DateTime::from_timestamp_millis(t).unwrap();
        let want = if t % 1000 == 0 {
            d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        } else {
            d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        };
        assert_eq!(st.format(t, &Zone::Fixed(0)), want, "{t}");
        assert_eq!(format_rfc3339(t + 3_600_000, &Zone::Fixed(3600)).len(), want.len() + 5, "{t}");
    }
}
