//! Charts as inline SVG: a time axis, a value axis with a few round ticks, and series of
//! points (each with a tooltip). Colours come from the page's stylesheet by class; every text
//! passes `escape`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::html::escape;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 40.0;

pub struct Point {
    pub at: DateTime<Utc>,
    pub value: f64,
    /// The tooltip: what the point is (id, figures).
    pub tip: String,
}

pub struct Series {
    pub name: String,
    /// The stylesheet class giving its colour and shape.
    pub class: &'static str,
    /// Whether points of this series are joined by a line (in time order).
    pub joined: bool,
    pub points: Vec<Point>,
}

/// A scatter chart of `series` over time; `label` formats a value for the axis, whose top is at
/// least `top_min` (so that a chart of zeros still has a readable scale).
pub fn time_chart(
    title: &str,
    value_axis: &str,
    series: &[Series],
    top_min: f64,
    label: impl Fn(f64) -> String,
) -> String {
    let all: Vec<&Point> = series.iter().flat_map(|s| &s.points).collect();
    if all.is_empty() {
        return format!(
            "<figure class=\"chart\"><figcaption>{}</figcaption><p>no data</p></figure>",
            escape(title)
        );
    }
    let seconds = |p: &Point| p.at.timestamp() as f64;
    let (mut x_min, mut x_max) = bounds(all.iter().map(|p| seconds(p)));
    if x_max - x_min < 1.0 {
        x_min -= 3600.0;
        x_max += 3600.0;
    }
    let (_, y_top) = bounds(all.iter().map(|p| p.value));
    let y_top = y_top.max(top_min);
    let step = round_step(y_top / 4.0);
    let y_max = (y_top / step).ceil().max(1.0) * step;
    let x = |s: f64| LEFT + (s - x_min) / (x_max - x_min) * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - (v / y_max) * (HEIGHT - TOP - BOTTOM);
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    axes(
        &mut svg,
        y_max,
        step,
        &label,
        value_axis,
        (x_min, x_max),
        &x,
        &y,
    );
    for one in series {
        if one.joined && one.points.len() > 1 {
            let mut sorted: Vec<&Point> = one.points.iter().collect();
            sorted.sort_by_key(|p| p.at);
            let path: Vec<String> = sorted
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(seconds(p)), y(p.value)))
                .collect();
            let _ = write!(
                svg,
                "<polyline class=\"{} line\" fill=\"none\" points=\"{}\"/>",
                one.class,
                path.join(" ")
            );
        }
        for p in &one.points {
            let _ = write!(
                svg,
                "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}</title></circle>",
                one.class,
                x(seconds(p)),
                y(p.value),
                escape(&p.tip)
            );
        }
    }
    legend(&mut svg, series);
    svg.push_str("</svg></figure>");
    svg
}

#[allow(clippy::too_many_arguments)]
fn axes(
    svg: &mut String,
    y_max: f64,
    step: f64,
    label: &impl Fn(f64) -> String,
    value_axis: &str,
    (x_min, x_max): (f64, f64),
    x: &impl Fn(f64) -> f64,
    y: &impl Fn(f64) -> f64,
) {
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/><line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\"/>",
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT
    );
    let mut value = 0.0;
    while value <= y_max + step / 2.0 {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{v:.1}\" x2=\"{r}\" y2=\"{v:.1}\"/><text class=\"tick\" x=\"{t}\" y=\"{v:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
            escape(&label(value)),
            v = y(value),
            r = WIDTH - RIGHT,
            t = LEFT - 6.0
        );
        value += step;
    }
    // Seconds when the whole axis spans less than two hours (a demo, a busy morning).
    let time_format = if x_max - x_min < 7200.0 {
        "%Y-%m-%d %H:%M:%S UTC"
    } else {
        "%Y-%m-%d %H:%M UTC"
    };
    for (fraction, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let seconds = x_min + fraction * (x_max - x_min);
        let at = DateTime::<Utc>::from_timestamp(seconds as i64, 0).unwrap_or_default();
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            x(seconds),
            HEIGHT - BOTTOM + 18.0,
            escape(&at.format(time_format).to_string())
        );
    }
    let _ = write!(
        svg,
        "<text class=\"tick\" x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>",
        (HEIGHT - BOTTOM + TOP) / 2.0,
        (HEIGHT - BOTTOM + TOP) / 2.0,
        escape(value_axis)
    );
}

fn legend(svg: &mut String, series: &[Series]) {
    let mut x = LEFT + 10.0;
    for one in series {
        let _ = write!(
            svg,
            "<circle class=\"{}\" cx=\"{x:.1}\" cy=\"{TOP}\" r=\"4\"/><text class=\"tick\" x=\"{:.1}\" y=\"{TOP}\" dominant-baseline=\"middle\">{}</text>",
            one.class,
            x + 8.0,
            escape(&one.name)
        );
        x += 16.0 + 7.0 * one.name.chars().count() as f64;
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// 1, 2 or 5 times a power of ten, at least `raw`: a tick step people read at a glance.
fn round_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tip_holding_markup_is_escaped_and_steps_are_round() {
        let at = DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap();
        let svg = time_chart(
            "t",
            "USD",
            &[Series {
                name: "n".into(),
                class: "requested",
                joined: false,
                points: vec![Point {
                    at,
                    value: 3537.0,
                    tip: "<script>".into(),
                }],
            }],
            1.0,
            |v| format!("{v}"),
        );
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script"));
        assert_eq!(round_step(884.25), 1000.0);
        assert_eq!(round_step(0.3), 0.5);
    }
}
