//! The analysis zone: the zone zone-less stamps (nginx error log, FPM) are read in.
//!
//! Input: `--tz` and the UTC offsets seen in the access logs' first lines. Output:
//! `ZoneChoice`: the zone, what chose it and why (reported in `summary.json`). Invariant: the
//! choice is explained; several offsets (a daylight-saving change) are pointed out.

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

/// Pick the zone for zone-less stamps: `--tz`, else the offset the access logs show, else
/// the machine's zone.
pub fn choose_zone(tz: Option<&Zone>, offsets: &BTreeMap<i32, u64>) -> ZoneChoice {
    if let Some(z) = tz {
        return ZoneChoice { zone: z.clone(), chosen_by: "--tz", detail: format!("--tz {z}") };
    }
    if let Some((&off, _)) = offsets.iter().max_by_key(|(o, n)| (**n, std::cmp::Reverse(**o))) {
        let seen: Vec<String> =
            offsets.iter().map(|(o, n)| format!("{} ({n} lines)", model::time::format_offset(*o))).collect();
        let mut detail = format!("offset of the access logs' first lines: {}", seen.join(", "));
        if offsets.len() > 1 {
            detail.push_str("; several offsets (a daylight-saving change?): pass --tz with the IANA zone so zone-less stamps follow it");
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
