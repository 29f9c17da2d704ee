//! Inline SVG charts for the HTML reports: stacked bars, lines, bars with a rate line.
//!
//! Input: x labels and numeric series. Output: an `<svg>` string with a legend, axes and
//! `<title>` tooltips. Invariants: every text that may come from a log is escaped (`esc`);
//! no external resource, script or style reference; deterministic output (fixed number
//! formatting, colours chosen by series order).

use std::fmt::Write;

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

const PALETTE: [&str; 20] = [
    "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363",
];

pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The colour of a cause, the same in every chart of every page: the cause's place in the
/// vocabulary (`Cause::ALL`) picks a hue by the golden angle, so neighbours differ and each
/// cause keeps its colour whatever else a chart shows. Anything else (`others`) is grey.
pub fn cause_color(cause: &str) -> String {
    match cause.parse::<crate::model::Cause>() {
        Ok(c) => {
            let i = crate::model::Cause::ALL.iter().position(|x| *x == c).unwrap_or(0);
            let hue = (i as f64 * 137.508) % 360.0;
            let light = [42, 55, 35][i % 3];
            format!("hsl({hue:.0},{}%,{light}%)", [70, 55, 80][i / 3 % 3])
        }
        Err(_) => "#999".into(),
    }
}

pub struct Series {
    pub name: String,
    pub color: String,
    pub values: Vec<f64>,
}

const W: f64 = 960.0;
const H: f64 = 300.0;
const L: f64 = 60.0;
const R: f64 = 60.0;
const T: f64 = 30.0;
const B: f64 = 40.0;

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v >= 1000.0 && v.fract() == 0.0 {
        format!("{}", v as i64)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let t = format!("{v:.2}");
        t.trim_end_matches('0').to_string()
    }
}

fn frame(
    title: &str,
    labels: &[String],
    ymax: f64,
    y_label: &str,
    legend: &[(&str, &str)],
    right: Option<&str>,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {}" role="img" class="chart"><title>{}</title>"#,
        H + 20.0 * legend.len().div_ceil(4) as f64,
        esc(title)
    );
    let _ = write!(s, r##"<text x="{L}" y="18" class="ct">{}</text>"##, esc(title));
    let ph = H - T - B;
    for k in 0..=4 {
        let y = T + ph - ph * k as f64 / 4.0;
        let v = ymax * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" class="ax">{}</text>"##,
            W - R,
            L - 6.0,
            y + 4.0,
            fmt_num(v)
        );
        if let Some(_r) = right {
            let _ = write!(s, r##"<text x="{}" y="{:.1}" class="ax">{}%</text>"##, W - R + 6.0, y + 4.0, 25 * k);
        }
    }
    let _ = write!(
        s,
        r##"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle" class="ax">{}</text>"##,
        T + ph / 2.0,
        T + ph / 2.0,
        esc(y_label)
    );
    if let Some(r) = right {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" transform="rotate(90 {:.1} {:.1})" text-anchor="middle" class="ax">{}</text>"##,
            W - 14.0,
            T + ph / 2.0,
            W - 14.0,
            T + ph / 2.0,
            esc(r)
        );
    }
    let n = labels.len().max(1);
    let step = (n as f64 / 6.0).ceil() as usize;
    let pw = W - L - R;
    for (i, l) in labels.iter().enumerate() {
        if i % step.max(1) == 0 {
            let x = L + pw * (i as f64 + 0.5) / n as f64;
            let _ = write!(
                s,
                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="ax">{}</text>"##,
                H - B + 16.0,
                esc(l)
            );
        }
    }
    for (i, (name, col)) in legend.iter().enumerate() {
        let x = L + (i % 4) as f64 * 220.0;
        let y = H + 20.0 * (i / 4) as f64 - 4.0;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{col}"/><text x="{:.1}" y="{y:.1}" class="lg">{}</text>"##,
            y - 10.0,
            x + 16.0,
            esc(name)
        );
    }
    s
}

/// Stacked bars (one stack per label), optionally with a 0..1 rate line on a right axis.
pub fn stacked_bars(
    title: &str,
    labels: &[String],
    series: &[Series],
    y_label: &str,
    rate: Option<(&str, &[Option<f64>])>,
) -> String {
    stacked_bars_marked(title, labels, series, y_label, rate, &[])
}

/// `stacked_bars` with spans of bars marked behind them (`(first bar, last bar, label)`: the
/// incidents on the run's timeline).
pub fn stacked_bars_marked(
    title: &str,
    labels: &[String],
    series: &[Series],
    y_label: &str,
    rate: Option<(&str, &[Option<f64>])>,
    marks: &[(usize, usize, String)],
) -> String {
    let n = labels.len();
    let totals: Vec<f64> =
        (0..n).map(|i| series.iter().map(|s| s.values.get(i).copied().unwrap_or(0.0)).sum()).collect();
    let ymax = nice_max(totals.iter().copied().fold(0.0, f64::max));
    let mut legend: Vec<(&str, &str)> = series.iter().map(|s| (s.name.as_str(), s.color.as_str())).collect();
    if let Some((name, _)) = rate {
        legend.push((name, "#000"));
    }
    let mut s = frame(title, labels, ymax, y_label, &legend, rate.map(|r| r.0));
    let ph = H - T - B;
    let pw = W - L - R;
    let bw = (pw / n.max(1) as f64).max(0.5);
    for (a, z, label) in marks {
        let (x0, x1) = (L + bw * *a as f64, L + bw * (*z + 1) as f64);
        let _ = write!(
            s,
            r##"<rect x="{x0:.2}" y="{T}" width="{:.2}" height="{ph:.2}" fill="#fde0dc" class="mark"><title>{}</title></rect><text x="{:.2}" y="{:.1}" class="ax" text-anchor="middle">{}</text>"##,
            (x1 - x0).max(1.0),
            esc(label),
            (x0 + x1) / 2.0,
            T + 10.0,
            esc(label)
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let mut y = T + ph;
        let x = L + bw * i as f64;
        for se in series {
            let v = se.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = ph * v / ymax;
            y -= h;
            let _ = write!(
                s,
                r##"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{h:.2}" fill="{}"><title>{}: {} {}</title></rect>"##,
                (bw - 0.4).max(0.3),
                se.color,
                esc(label),
                esc(&se.name),
                fmt_num(v)
            );
        }
    }
    if let Some((_, values)) = rate {
        let mut d = String::new();
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let x = L + bw * (i as f64 + 0.5);
                let y = T + ph - ph * v.clamp(0.0, 1.0);
                let _ = write!(d, "{}{x:.1},{y:.1} ", if d.is_empty() { "M" } else { "L" });
            }
        }
        if !d.is_empty() {
            let _ = write!(s, r##"<path d="{}" fill="none" stroke="#000" stroke-width="1.5"/>"##, d.trim_end());
        }
    }
    s.push_str("</svg>");
    s
}

/// Lines (one per series) over the labels; `None` values leave gaps.
pub fn lines(title: &str, labels: &[String], series: &[(String, String, Vec<Option<f64>>)], y_label: &str) -> String {
    let ymax = nice_max(series.iter().flat_map(|s| s.2.iter().flatten()).copied().fold(0.0, f64::max));
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.0.as_str(), s.1.as_str())).collect();
    let mut s = frame(title, labels, ymax, y_label, &legend, None);
    let ph = H - T - B;
    let pw = W - L - R;
    let n = labels.len().max(1) as f64;
    for (name, colour, values) in series {
        let mut d = String::new();
        let mut pen_up = true;
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    let x = L + pw * (i as f64 + 0.5) / n;
                    let y = T + ph - ph * v / ymax;
                    let _ = write!(d, "{}{x:.1},{y:.1} ", if pen_up { "M" } else { "L" });
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        if !d.is_empty() {
            let _ = write!(
                s,
                r##"<path d="{}" fill="none" stroke="{colour}" stroke-width="1.5"><title>{}</title></path>"##,
                d.trim_end(),
                esc(name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Grouped horizontal comparison bars: per label, one bar per series.
pub fn grouped_bars(title: &str, labels: &[String], series: &[Series], y_label: &str) -> String {
    let ymax = nice_max(series.iter().flat_map(|s| s.values.iter()).copied().fold(0.0, f64::max));
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.name.as_str(), s.color.as_str())).collect();
    let mut s = frame(title, labels, ymax, y_label, &legend, None);
    let ph = H - T - B;
    let pw = W - L - R;
    let n = labels.len().max(1) as f64;
    let group = pw / n;
    let bw = (group * 0.8 / series.len().max(1) as f64).max(0.5);
    for (i, label) in labels.iter().enumerate() {
        for (k, se) in series.iter().enumerate() {
            let v = se.values.get(i).copied().unwrap_or(0.0);
            let h = ph * v / ymax;
            let x = L + group * i as f64 + group * 0.1 + bw * k as f64;
            let _ = write!(
                s,
                r##"<rect x="{x:.2}" y="{:.2}" width="{bw:.2}" height="{h:.2}" fill="{}"><title>{} {}: {}</title></rect>"##,
                T + ph - h,
                se.color,
                esc(label),
                esc(&se.name),
                fmt_num(v)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_draws() {
        assert_eq!(esc("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
        let svg = stacked_bars(
            "t<x>",
            &["a".into(), "b".into()],
            &[Series { name: "<img onerror=x>".into(), color: color(0).into(), values: vec![1.0, 2.0] }],
            "y",
            Some(("rate", &[Some(0.5), None])),
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("<img") && svg.contains("&lt;img onerror=x&gt;"));
        assert_eq!(svg.matches("<rect").count(), 2 + 2);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(0.0), 1.0);
    }
}
