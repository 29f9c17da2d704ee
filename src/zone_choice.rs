//! The analysis zone: the zone zone-less stamps (nginx error log, FPM) are read in.
//!
//! Input: `--tz` and the UTC offsets seen in the access logs' first lines, with the instants
//! they were seen at. Output: `ZoneChoice`: the zone, what chose it and why (reported in
//! `summary.json`). Invariants: the choice is explained; with several offsets (a
//! daylight-saving change) the zone is an IANA zone whose offset at every sampled instant is
//! the one logged there (the machine's own if it is one of them, else the first by region and
//! name: the choice does not depend on the order files were found in), or, when none fits
//! (logs of several zones), the most common offset and a warning.

use crate::model::{self, Zone};
use std::collections::BTreeMap;

/// How the analysis zone was chosen.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ZoneChoice {
    #[serde(serialize_with = "ser_display")]
    pub zone: Zone,
    pub chosen_by: &'static str,
    pub detail: String,
}

fn ser_display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Pick the zone for zone-less stamps: `--tz`, else the zone the access logs' offsets show
/// (`stamps`: (UTC seconds, offset) of sampled lines), else the machine's zone.
pub fn choose_zone(tz: Option<&Zone>, offsets: &BTreeMap<i32, u64>, stamps: &[(i64, i32)]) -> ZoneChoice {
    if let Some(z) = tz {
        return ZoneChoice { zone: z.clone(), chosen_by: "--tz", detail: format!("--tz {z}") };
    }
    if let Some((&off, _)) = offsets.iter().max_by_key(|(o, n)| (**n, std::cmp::Reverse(**o))) {
        let seen: Vec<String> =
            offsets.iter().map(|(o, n)| format!("{} ({n} lines)", model::time::format_offset(*o))).collect();
        let mut detail = format!("offset of the access logs' first lines: {}", seen.join(", "));
        // Offsets only a plain file's last line showed (a change inside that file).
        let mut later: Vec<i32> = stamps.iter().map(|s| s.1).filter(|o| !offsets.contains_key(o)).collect();
        later.sort_unstable();
        later.dedup();
        if !later.is_empty() {
            let l: Vec<String> = later.iter().map(|o| model::time::format_offset(*o)).collect();
            detail.push_str(&format!(", and of a file's last lines: {}", l.join(", ")));
        }
        if offsets.len() > 1 || !later.is_empty() {
            let fit = zones_fitting(stamps);
            if let Some(&z) = preferred(&fit, machine_zone()) {
                let named: Vec<&str> = fit.iter().take(4).map(|t| t.name()).collect();
                detail.push_str(&format!(
                    "; several offsets (a daylight-saving change): zone-less stamps follow {} ({} of the {} IANA zones whose offset at each sampled line is the one logged{}; --tz names another)",
                    z.name(),
                    if fit.len() == 1 { "the only one" } else { "one" },
                    fit.len(),
                    if fit.len() > 1 { format!(": {}{}", named.join(", "), if fit.len() > 4 { ", ..." } else { "" }) } else { String::new() },
                ));
                return ZoneChoice { zone: Zone::Named(z), chosen_by: "access-log offsets (zone inferred)", detail };
            }
            detail.push_str("; several offsets that no single IANA zone gives at the instants logged (logs of several zones?): zone-less stamps take the most common; pass --tz with the zone of the error and FPM logs");
        }
        return ZoneChoice { zone: Zone::Fixed(off), chosen_by: "access-log offsets", detail };
    }
    let here = Zone::Local;
    let name = std::env::var("TZ").ok().filter(|s| !s.is_empty());
    ZoneChoice {
        zone: here,
        chosen_by: "machine",
        detail: format!(
            "no --tz and no access-log offset; zone-less stamps read in this machine's zone{}",
            name.map(|n| format!(" (TZ={n})")).unwrap_or_default()
        ),
    }
}

/// After the scan: a zone taken as one fixed offset from the access logs' first lines
/// (`head`, and the sampled `stamps`), when the access lines went on to show offsets the
/// samples did not (`seen`: a daylight-saving change inside a compressed file, whose last
/// lines discovery does not read): zone-less stamps on the other side of the change are off
/// by the difference. The warning names the offsets and `--tz`. (Several offsets among the
/// samples are the zone choice's own detail.)
pub fn check_offsets(
    choice: &ZoneChoice,
    head: &BTreeMap<i32, u64>,
    stamps: &[(i64, i32)],
    seen: &BTreeMap<i32, u64>,
) -> Option<model::Diagnostic> {
    let Zone::Fixed(z) = choice.zone else { return None };
    let known = |o: &i32| head.contains_key(o) || stamps.iter().any(|s| s.1 == *o);
    if choice.chosen_by == "--tz" || seen.keys().all(known) {
        return None;
    }
    let all: Vec<String> =
        seen.iter().map(|(o, n)| format!("{} ({n} lines)", model::time::format_offset(*o))).collect();
    Some(model::Diagnostic {
        severity: model::Severity::Warning,
        file: "(all zone-less logs)".into(),
        line: None,
        offset: None,
        message: format!(
            "the access logs show the offsets {}, but the error and FPM logs' stamps were read at {} (from the access logs' first lines): a daylight-saving change inside a file? Stamps on its other side are off by the difference; pass --tz with the IANA zone",
            all.join(", "),
            model::time::format_offset(z)
        ),
    })
}

/// The zone again after the scan, which saw offsets the files' first lines did not (a
/// daylight-saving change inside a compressed file, whose end is not read before the scan):
/// `choose_zone` with the instants the scan saw each offset at among `stamps`. `None` when
/// `--tz` chose, when no IANA zone gives every offset at its instants, or when the zone it
/// names is the one chosen.
pub fn after_scan(current: &ZoneChoice, head: &BTreeMap<i32, u64>, stamps: &[(i64, i32)]) -> Option<ZoneChoice> {
    if current.chosen_by == "--tz" {
        return None;
    }
    let mut c = choose_zone(None, head, stamps);
    if c.chosen_by != "access-log offsets (zone inferred)" || c.zone == current.zone {
        return None;
    }
    c.detail.push_str(
        "; chosen after a first scan, which saw offsets the files' first lines did not (a daylight-saving change inside a compressed file), and the logs read again in it",
    );
    Some(c)
}

/// The IANA zones whose UTC offset at each instant of `stamps` (UTC seconds, offset) is the
/// offset logged there, ordered by region (the continents' zones before `Etc/` and the legacy
/// names) and name.
fn zones_fitting(stamps: &[(i64, i32)]) -> Vec<chrono_tz::Tz> {
    use chrono::{Offset, TimeZone};
    let at: Vec<(chrono::NaiveDateTime, i32)> = stamps
        .iter()
        .filter_map(|&(t, off)| Some((chrono::DateTime::from_timestamp(t, 0)?.naive_utc(), off)))
        .collect();
    let mut fit: Vec<chrono_tz::Tz> = chrono_tz::TZ_VARIANTS
        .iter()
        .copied()
        .filter(|tz| {
            !at.is_empty() && at.iter().all(|(t, off)| tz.offset_from_utc_datetime(t).fix().local_minus_utc() == *off)
        })
        .collect();
    const REGIONS: [&str; 9] =
        ["Europe/", "America/", "Asia/", "Australia/", "Africa/", "Pacific/", "Atlantic/", "Indian/", "Antarctica/"];
    let rank = |z: &chrono_tz::Tz| REGIONS.iter().position(|r| z.name().starts_with(r)).unwrap_or(REGIONS.len());
    fit.sort_by_key(|z| (rank(z), z.name()));
    fit
}

/// The machine's IANA zone, if it has a name: `TZ`, else the system's setting.
fn machine_zone() -> Option<chrono_tz::Tz> {
    let name = std::env::var("TZ").ok().filter(|s| !s.is_empty()).or_else(|| iana_time_zone::get_timezone().ok())?;
    name.trim_start_matches(':').parse().ok()
}

/// The machine's zone when it fits, else the first that fits.
fn preferred(fit: &[chrono_tz::Tz], machine: Option<chrono_tz::Tz>) -> Option<&chrono_tz::Tz> {
    machine.and_then(|m| fit.iter().find(|z| **z == m)).or(fit.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets on both sides of the end of summer time in central Europe (2026-10-25 01:00 UTC):
    /// a zone with those rules, the machine's when it is one of them; none for offsets no zone
    /// gives together; a single offset stays a fixed one.
    #[test]
    fn a_daylight_saving_change_names_a_zone_with_its_rules() {
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        let stamps =
            [(t("2026-10-24T12:00:00Z"), 7200), (t("2026-10-25T00:59:00Z"), 7200), (t("2026-10-25T01:10:00Z"), 3600)];
        let fit = zones_fitting(&stamps);
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        assert!(fit.contains(&berlin) && fit.contains(&"Europe/Paris".parse().unwrap()), "{fit:?}");
        assert!(!fit.contains(&"Europe/London".parse().unwrap()) && !fit.contains(&"Africa/Cairo".parse().unwrap()));
        assert!(fit[0].name().starts_with("Europe/"), "{fit:?}");
        assert_eq!(preferred(&fit, Some(berlin)), Some(&berlin));
        assert_eq!(preferred(&fit, Some("Asia/Tokyo".parse().unwrap())), fit.first());
        // Summer time ends an hour later in local terms in London: +01:00 then +00:00.
        let london = [(t("2026-10-25T00:30:00Z"), 3600), (t("2026-10-25T01:30:00Z"), 0)];
        assert!(zones_fitting(&london).contains(&"Europe/London".parse().unwrap()));
        // +02:00 and +09:00 around the same instant: no zone.
        assert!(zones_fitting(&[(t("2026-10-24T12:00:00Z"), 7200), (t("2026-10-24T13:00:00Z"), 32400)]).is_empty());
        let one = BTreeMap::from([(3600, 4)]);
        let c = choose_zone(None, &one, &[(t("2026-11-24T12:00:00Z"), 3600)]);
        assert!(matches!(c.zone, Zone::Fixed(3600)) && c.chosen_by == "access-log offsets", "{c:?}");
        let two = BTreeMap::from([(3600, 1), (7200, 2)]);
        let c = choose_zone(None, &two, &stamps);
        assert!(matches!(c.zone, Zone::Named(z) if fit.contains(&z)), "{c:?}");
        assert_eq!(c.chosen_by, "access-log offsets (zone inferred)");
        // The scan saw an offset the first lines did not: warned, unless --tz chose.
        let c = choose_zone(None, &one, &[(t("2026-10-24T12:00:00Z"), 3600)]);
        assert!(check_offsets(&c, &one, &[], &one).is_none());
        let w = check_offsets(&c, &one, &[], &two).expect("a warning");
        assert!(w.message.contains("+02:00 (2 lines)") && w.message.contains("--tz"), "{}", w.message);
        assert!(check_offsets(&choose_zone(Some(&Zone::Fixed(3600)), &one, &[]), &one, &[], &two).is_none());
        // One offset in the first lines, another in a plain file's last line: inferred.
        let c = choose_zone(None, &BTreeMap::from([(7200, 3)]), &stamps);
        assert!(matches!(c.zone, Zone::Named(z) if fit.contains(&z)), "{c:?}");
        assert!(c.detail.contains("and of a file's last lines: +01:00"), "{}", c.detail);
        // Both offsets already in the first lines (no zone fits them): said by the choice.
        let nine = BTreeMap::from([(3600, 1), (32400, 1)]);
        let c = choose_zone(None, &nine, &[(t("2026-10-24T12:00:00Z"), 3600), (t("2026-10-24T13:00:00Z"), 32400)]);
        assert!(matches!(c.zone, Zone::Fixed(_)) && c.detail.contains("no single IANA zone"), "{c:?}");
        assert!(check_offsets(&c, &nine, &[], &nine).is_none());
    }
}
