//! The DORA page's trends: one bar chart per metric over weekly buckets, and the same figures
//! as a table.
//!
//! Charts are SVG drawn here, on the server, with presentation attributes only (the
//! Content-Security-Policy allows no inline style and no script but ours), so they need no
//! chart library. Each has a y axis with its unit and top value, the weeks' start dates on the
//! x axis, and each bar's value written above it (every few bars when there are many weeks:
//! the table then has them all). A week with nothing to measure has no bar and a dash.

use maud::{Markup, html};
use shiplog_domain::dora::Report;
use shiplog_domain::timestamp::Timestamp;

use crate::layout;

/// What a chart's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A count.
    Count,
    /// A fraction, shown in percent.
    Percent,
    /// Seconds, shown in minutes, hours or days, whichever suits the largest value.
    Duration,
}

/// One metric's trend.
pub(crate) struct Trend {
    /// The section's anchor.
    pub id: &'static str,
    /// The chart's heading.
    pub title: &'static str,
    /// What the value is ("successful deployments", "median").
    pub what: &'static str,
    /// How the values read.
    pub unit: Unit,
    /// Each week's start and value (count, fraction or seconds); `None`: nothing measured.
    pub points: Vec<(Timestamp, Option<f64>)>,
}

/// The five trends of a weekly series.
pub(crate) fn of(series: &[Report]) -> Vec<Trend> {
    let points = |value: fn(&Report) -> Option<f64>| -> Vec<(Timestamp, Option<f64>)> {
        series.iter().map(|r| (r.window.from, value(r))).collect()
    };
    vec![
        Trend {
            id: "trend-deployment-frequency",
            title: "Deployment frequency",
            what: "successful deployments",
            unit: Unit::Count,
            points: points(|r| Some(r.deployment_frequency.samples as f64)),
        },
        Trend {
            id: "trend-lead-time",
            title: "Lead time for changes",
            what: "median",
            unit: Unit::Duration,
            points: points(|r| r.lead_time.median_seconds),
        },
        Trend {
            id: "trend-change-failure-rate",
            title: "Change failure rate",
            what: "failed of finished",
            unit: Unit::Percent,
            points: points(|r| r.change_failure_rate.value),
        },
        Trend {
            id: "trend-recovery-time",
            title: "Failed deployment recovery time",
            what: "median",
            unit: Unit::Duration,
            points: points(|r| r.recovery_time.median_seconds),
        },
        Trend {
            id: "trend-rework-rate",
            title: "Deployment rework rate",
            what: "rework of finished",
            unit: Unit::Percent,
            points: points(|r| r.rework_rate.value),
        },
    ]
}

/// How a chart's values are divided and named: by its largest value for durations.
fn scale(unit: Unit, largest: f64) -> (f64, &'static str) {
    match unit {
        Unit::Count => (1.0, "deployments"),
        Unit::Percent => (0.01, "%"),
        Unit::Duration if largest < 7200.0 => (60.0, "minutes"),
        Unit::Duration if largest < 172_800.0 => (3600.0, "hours"),
        Unit::Duration => (86_400.0, "days"),
    }
}

/// The smallest 1, 2 or 5 times a power of ten at or above `value` (at least 1).
fn ceiling(value: f64) -> f64 {
    if value <= 1.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|nice| *nice >= value)
        .unwrap_or(10.0 * power)
}

/// A value as a label: whole numbers plainly, others with one decimal.
fn label(value: f64) -> String {
    if (value - value.round()).abs() < 0.05 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// "Mar 4": a week's start, as the x axis writes it.
fn short_day(at: Timestamp) -> String {
    let date = at.as_offset_date_time().date();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = month
        .get(usize::from(u8::from(date.month())) - 1)
        .copied()
        .unwrap_or("?");
    format!("{name} {}", date.day())
}

/// Every how many bars a label is written, so that at most `most` fit.
fn every(count: usize, most: usize) -> usize {
    count.div_ceil(most.max(1)).max(1)
}

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 36.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 34.0;

/// One trend's chart.
pub(crate) fn chart(trend: &Trend) -> Markup {
    let largest = trend
        .points
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(0.0_f64, f64::max);
    let (divisor, unit) = scale(trend.unit, largest);
    let top = ceiling(largest / divisor);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let count = trend.points.len().max(1);
    let slot = plot_width / count as f64;
    let bar = (slot * 0.7).max(1.0);
    let values_every = every(count, 13);
    let days_every = every(count, 5);
    let base = TOP + plot_height;
    let title_id = format!("{}-title", trend.id);
    let first = trend.points.first().map(|(at, _)| short_day(*at));
    let last = trend.points.last().map(|(at, _)| short_day(*at));
    html! {
        section.trend #(trend.id) {
            h3 { (trend.title) " " span.muted {
                @if trend.unit == Unit::Count { "(" (trend.what) " per week)" }
                @else { "(" (trend.what) ", " (unit) ", per week)" }
            } }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-labelledby=(title_id) {
                title #(title_id) {
                    (trend.title) ", " (trend.what) " in " (unit) " per week"
                    @if let (Some(first), Some(last)) = (&first, &last) { ", weeks of " (first) " to " (last) }
                    ": the table below has every value"
                }
                text.axis x=(format!("{:.1}", LEFT - 4.0)) y=(format!("{:.1}", TOP + 4.0)) text-anchor="end" { (label(top)) }
                text.axis x=(format!("{:.1}", LEFT - 4.0)) y=(format!("{base:.1}")) text-anchor="end" { "0" }
                text.axis x="2" y="10" { (unit) }
                line.grid x1=(format!("{LEFT:.1}")) y1=(format!("{TOP:.1}")) x2=(format!("{:.1}", WIDTH - RIGHT)) y2=(format!("{TOP:.1}")) {}
                line.axis x1=(format!("{LEFT:.1}")) y1=(format!("{base:.1}")) x2=(format!("{:.1}", WIDTH - RIGHT)) y2=(format!("{base:.1}")) {}
                @for (i, (at, value)) in trend.points.iter().enumerate() {
                    @let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
                    @let centre = x + bar / 2.0;
                    @let shown = value.map(|v| v / divisor);
                    @let height = shown.map_or(0.0, |v| (v / top).min(1.0) * plot_height);
                    @if let Some(v) = shown {
                        rect.bar x=(format!("{x:.1}")) y=(format!("{:.1}", base - height)) width=(format!("{bar:.1}")) height=(format!("{height:.1}")) {
                            title { "week of " (short_day(*at)) ": " (label(v)) " " (unit) }
                        }
                    }
                    @if i % values_every == 0 || i + 1 == count {
                        text.value x=(format!("{centre:.1}")) y=(format!("{:.1}", base - height - 3.0)) text-anchor="middle" {
                            @match shown { Some(v) => (label(v)), None => "–" }
                        }
                    }
                    @if i % days_every == 0 {
                        text.axis x=(format!("{centre:.1}")) y=(format!("{:.1}", base + 14.0)) text-anchor="middle" { (short_day(*at)) }
                    }
                }
                text.axis x=(format!("{:.1}", LEFT + plot_width / 2.0)) y=(format!("{:.1}", HEIGHT - 4.0)) text-anchor="middle" { "week starting" }
            }
        }
    }
}

/// The weekly figures as one table: the charts' values, readable by anyone and anything.
pub(crate) fn table(series: &[Report]) -> Markup {
    html! {
        details.trend-table open[series.len() <= 6] {
            summary { "The weekly figures as a table" }
            div.scroll tabindex="0" {
                table {
                    thead { tr {
                        th scope="col" { "Week starting" }
                        th scope="col" { "Successful deployments" }
                        th scope="col" { "Lead time (median)" }
                        th scope="col" { "Change failure rate" }
                        th scope="col" { "Recovery time (median)" }
                        th scope="col" { "Rework rate" }
                    } }
                    tbody {
                        @for report in series {
                            tr {
                                th scope="row" { (layout::time(report.window.from)) }
                                td { (report.deployment_frequency.samples) }
                                td { (layout::duration(report.lead_time.median_seconds)) }
                                td { (layout::percent(report.change_failure_rate.value)) }
                                td { (layout::duration(report.recovery_time.median_seconds)) }
                                td { (layout::percent(report.rework_rate.value)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_of_an_axis_is_a_round_number_at_or_above_the_largest_value() {
        assert_eq!(ceiling(0.0), 1.0);
        assert_eq!(ceiling(0.4), 1.0);
        assert_eq!(ceiling(3.0), 5.0);
        assert_eq!(ceiling(5.0), 5.0);
        assert_eq!(ceiling(7.2), 10.0);
        assert_eq!(ceiling(12.0), 20.0);
        assert_eq!(ceiling(260.0), 500.0);
    }

    #[test]
    fn durations_are_drawn_in_the_unit_of_their_largest_value() {
        assert_eq!(scale(Unit::Duration, 1800.0), (60.0, "minutes"));
        assert_eq!(scale(Unit::Duration, 36_000.0), (3600.0, "hours"));
        assert_eq!(scale(Unit::Duration, 864_000.0), (86_400.0, "days"));
        assert_eq!(scale(Unit::Percent, 0.5), (0.01, "%"));
    }

    #[test]
    fn labels_thin_out_to_fit() {
        assert_eq!(every(5, 13), 1);
        assert_eq!(every(53, 13), 5);
        assert_eq!(every(53, 5), 11);
        assert_eq!(label(2.0), "2");
        assert_eq!(label(2.5), "2.5");
        assert_eq!(
            short_day(Timestamp::parse("2024-03-04T00:00:00Z").unwrap()),
            "Mar 4"
        );
    }

    #[test]
    fn a_bar_per_measured_week_and_a_dash_for_the_others() {
        let at = |d: &str| Timestamp::parse(d).unwrap();
        let trend = Trend {
            id: "t",
            title: "Lead time for changes",
            what: "median",
            unit: Unit::Duration,
            points: vec![
                (at("2024-03-04T00:00:00Z"), Some(1800.0)),
                (at("2024-03-11T00:00:00Z"), None),
                (at("2024-03-18T00:00:00Z"), Some(3600.0)),
            ],
        };
        let svg = chart(&trend).into_string();
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        // In minutes: 30 and 60 over an axis to 100.
        assert!(
            svg.contains(">30</text>") && svg.contains(">60</text>"),
            "{svg}"
        );
        assert!(svg.contains(">–</text>"), "{svg}");
        assert!(
            svg.contains(">100</text>") && svg.contains(">minutes</text>"),
            "{svg}"
        );
        assert!(svg.contains(">Mar 4</text>"), "{svg}");
    }
}
