//! The report's plots, one SVG file each: propagation latency CDF, deliveries over time,
//! hire outcomes over time, peers per node, CPU and memory per node. Every time axis marks
//! the run's faults as dashed vertical lines, one colour per kind, labelled with the kind
//! and target (beyond 40 faults, as in a crash test, the lines are fainter and unlabelled;
//! the legend counts each kind). Networks of more than 12 nodes are drawn as min, median
//! and max over nodes instead of one line per node.
//!
//! Drawn with plotters' SVG backend only: text is written as SVG `<text>` and laid out with
//! plotters' built-in size estimate, so no system font (nor fontconfig) is needed. Missing
//! data gives a valid SVG that says "no data", never an error or a panic. Figures come from
//! `stats`; this module only draws and writes.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ReportError;
use super::data::{FaultMark, RunData, Sample};
use super::stats::{self, NodeSeries, Summary};

/// The error plotters gives while drawing into an SVG string.
pub(crate) type DrawError = DrawingAreaErrorKind<std::io::Error>;
type DrawResult = Result<(), DrawError>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 560;
/// Width of the legend column right of each time chart.
const LEGEND_WIDTH: u32 = 250;
const FONT: &str = "sans-serif";
// Font sizes as plotters takes them (it writes size / 1.24 as the SVG font-size).
const TITLE_SIZE: u32 = 22;
const AXIS_LABEL_SIZE: u32 = 16;
const AXIS_DESC_SIZE: u32 = 17;
const LEGEND_SIZE: u32 = 16;
const NOTE_SIZE: u32 = 15;
/// Runs with more nodes than this draw min/median/max instead of one line per node.
pub(crate) const MAX_NODE_LINES: usize = 12;
/// Runs with more faults than this mark them without a text label each.
const MAX_FAULT_LABELS: usize = 40;
/// Rows of fault labels at the top of a time chart.
const LABEL_ROWS: usize = 5;
const LABEL_ROW_PX: i32 = 17;
const LABEL_FONT_SIZE: u32 = 15;
/// Rough width of one character of a label, for placing labels side by side.
const LABEL_CHAR_PX: f64 = 7.0;
const LABEL_MAX_CHARS: usize = 22;

/// Data series colours (Tableau 10, then two more for up to 12 nodes).
const SERIES_COLOURS: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 128, 0),
];

/// Colours of fault kinds not named in [`fault_colour`], by order of first appearance.
const OTHER_FAULT_COLOURS: [RGBColor; 4] = [
    RGBColor(200, 0, 160),
    RGBColor(90, 90, 90),
    RGBColor(110, 110, 0),
    RGBColor(0, 60, 120),
];

/// One plot of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlotKind {
    /// CDF of propagation latency.
    PropagationCdf,
    /// Cumulative deliveries over run time.
    Deliveries,
    /// Cumulative hire outcomes over run time.
    Hires,
    /// Peers per node over run time.
    Peers,
    /// CPU and resident memory per node over run time.
    Resources,
}

impl PlotKind {
    /// Every plot, in the order the report shows them.
    pub(crate) const ALL: [PlotKind; 5] = [
        PlotKind::PropagationCdf,
        PlotKind::Deliveries,
        PlotKind::Hires,
        PlotKind::Peers,
        PlotKind::Resources,
    ];

    /// The file the plot is written to, in the report directory.
    pub(crate) fn file_name(self) -> &'static str {
        match self {
            PlotKind::PropagationCdf => "propagation-cdf.svg",
            PlotKind::Deliveries => "deliveries.svg",
            PlotKind::Hires => "hires.svg",
            PlotKind::Peers => "peers.svg",
            PlotKind::Resources => "resources.svg",
        }
    }

    /// A short name for the plot (its alt text in report.md).
    pub(crate) fn name(self) -> &'static str {
        match self {
            PlotKind::PropagationCdf => "propagation",
            PlotKind::Deliveries => "deliveries",
            PlotKind::Hires => "hires",
            PlotKind::Peers => "peers",
            PlotKind::Resources => "resources",
        }
    }

    /// Writes this plot of `run` into `dir`; returns the file's path.
    pub(crate) fn write(
        self,
        dir: &Path,
        run: &RunData,
        summary: &Summary,
    ) -> Result<PathBuf, ReportError> {
        match self {
            PlotKind::PropagationCdf => propagation_cdf(dir, run, summary),
            PlotKind::Deliveries => deliveries(dir, run),
            PlotKind::Hires => hires(dir, run),
            PlotKind::Peers => peers(dir, run),
            PlotKind::Resources => resources(dir, run),
        }
    }
}

/// `propagation-cdf.svg`: the share of deliveries (y, 0..1) that arrived within a latency
/// (x, ms), with p50, p99 and max in the caption.
pub(crate) fn propagation_cdf(
    dir: &Path,
    run: &RunData,
    summary: &Summary,
) -> Result<PathBuf, ReportError> {
    let latencies = stats::propagation_latencies(run);
    let caption = match summary.propagation_ms {
        Some(p) => format!(
            "{}propagation latency CDF (p50 {} ms, p99 {} ms, max {} ms, {} deliveries)",
            scenario_prefix(run),
            p.p50,
            p.p99,
            p.max,
            p.count
        ),
        None => format!("{}propagation latency CDF", scenario_prefix(run)),
    };
    render(dir, PlotKind::PropagationCdf, (WIDTH, HEIGHT), |root| {
        let area = root.titled(&caption, (FONT, TITLE_SIZE))?;
        let Some(&max) = latencies.last() else {
            return no_data(&area, "no data: no manifest was delivered");
        };
        let n = latencies.len() as f64;
        let x_end = (max as f64 * 1.05).max(1.0);
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(50)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..x_end, 0f64..1.02)?;
        chart
            .configure_mesh()
            .x_desc("propagation latency (ms)")
            .y_desc("fraction of deliveries")
            .x_label_formatter(&|v| format_number(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FONT, AXIS_LABEL_SIZE))
            .axis_desc_style((FONT, AXIS_DESC_SIZE))
            .max_light_lines(1)
            .light_line_style(RGBColor(242, 242, 242))
            .draw()?;
        let mut points = vec![(0.0, 0.0)];
        for (i, latency) in latencies.iter().enumerate() {
            let x = *latency as f64;
            points.push((x, i as f64 / n));
            points.push((x, (i + 1) as f64 / n));
        }
        points.push((x_end, 1.0));
        if let Some(p) = summary.propagation_ms {
            for (name, value) in [("p50", p.p50), ("p99", p.p99)] {
                let x = value as f64;
                let grey = RGBColor(120, 120, 120);
                chart.plotting_area().draw(&DashedPathElement::new(
                    vec![(x, 0.0), (x, 1.02)],
                    4,
                    4,
                    grey.stroke_width(1),
                ))?;
                let label = format!("{name} {value} ms");
                chart.plotting_area().draw(
                    &(EmptyElement::at((x, 0.0))
                        + Text::new(label, (4, -22), (FONT, NOTE_SIZE).into_font().color(&grey))),
                )?;
            }
        }
        chart.draw_series(LineSeries::new(
            thin(&points, MAX_POINTS),
            SERIES_COLOURS[0].stroke_width(2),
        ))?;
        Ok(())
    })
}

/// `deliveries.svg`: cumulative deliveries over run time, beside the deliveries due
/// (each publication times the expected receivers).
pub(crate) fn deliveries(dir: &Path, run: &RunData) -> Result<PathBuf, ReportError> {
    let delivered = stats::delivery_times(run);
    let due = stats::expected_delivery_times(run);
    let title = format!("{}manifest deliveries over time", scenario_prefix(run));
    let lines = if delivered.is_empty() && due.is_empty() {
        Vec::new()
    } else {
        vec![
            Line::solid(
                "delivered",
                SERIES_COLOURS[0],
                steps(stats::cumulative(delivered, run.duration_ms)),
            ),
            Line::solid(
                "due: published × receivers",
                RGBColor(150, 150, 150),
                steps(stats::cumulative(due, run.duration_ms)),
            ),
        ]
    };
    time_plot(
        dir,
        PlotKind::Deliveries,
        run,
        &title,
        &[Panel {
            y_desc: "deliveries (cumulative)",
            lines,
            integer: true,
        }],
    )
}

/// `hires.svg`: for each outcome, how many hires had ended that way over run time; and
/// how many had been started.
pub(crate) fn hires(dir: &Path, run: &RunData) -> Result<PathBuf, ReportError> {
    let title = format!("{}hire outcomes over time", scenario_prefix(run));
    let mut lines = Vec::new();
    if !run.hires.is_empty() {
        let started = run.hires.iter().map(|h| h.started_at_ms);
        lines.push(Line {
            label: format!("started ({})", run.hires.len()),
            colour: BLACK,
            width: 1,
            segments: vec![steps(stats::cumulative(started, run.duration_ms))],
        });
        for (i, (outcome, points)) in stats::hire_outcome_series(run).into_iter().enumerate() {
            let total = points.last().map_or(0, |p| p.1);
            lines.push(Line::solid(
                &format!("{outcome} ({total})"),
                outcome_colour(&outcome, i),
                steps(points),
            ));
        }
    }
    time_plot(
        dir,
        PlotKind::Hires,
        run,
        &title,
        &[Panel {
            y_desc: "hires (cumulative)",
            lines,
            integer: true,
        }],
    )
}

/// `peers.svg`: connected peers of each node over run time (min/median/max over nodes
/// when there are more than [`MAX_NODE_LINES`]).
pub(crate) fn peers(dir: &Path, run: &RunData) -> Result<PathBuf, ReportError> {
    let title = format!("{}peers per node", scenario_prefix(run));
    let series = stats::node_series(run, |s: &Sample| s.peers.map(f64::from));
    time_plot(
        dir,
        PlotKind::Peers,
        run,
        &title,
        &[Panel {
            y_desc: "connected peers",
            lines: node_lines(&series),
            integer: true,
        }],
    )
}

/// `resources.svg`: two panels over run time, CPU (percent of one core) and resident
/// memory (MiB) of each node (min/median/max over nodes when there are more than
/// [`MAX_NODE_LINES`]).
pub(crate) fn resources(dir: &Path, run: &RunData) -> Result<PathBuf, ReportError> {
    let title = format!("{}CPU and memory per node", scenario_prefix(run));
    let cpu = stats::node_series(run, |s: &Sample| s.cpu_percent);
    let rss = stats::node_series(run, |s: &Sample| {
        s.rss_bytes.map(|b| b as f64 / (1024.0 * 1024.0))
    });
    let cpu_panel = Panel {
        y_desc: "CPU (% of one core)",
        lines: node_lines(&cpu),
        integer: false,
    };
    let rss_panel = Panel {
        y_desc: "resident memory (MiB)",
        lines: node_lines(&rss),
        integer: false,
    };
    time_plot(
        dir,
        PlotKind::Resources,
        run,
        &title,
        &[cpu_panel, rss_panel],
    )
}

/// A line of a time chart: points in (seconds, value), broken where data is missing.
struct Line {
    label: String,
    colour: RGBColor,
    width: u32,
    segments: Vec<Vec<(f64, f64)>>,
}

impl Line {
    fn solid(label: &str, colour: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Line {
            label: label.to_string(),
            colour,
            width: 2,
            segments: vec![points],
        }
    }

    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.segments.iter().flatten()
    }
}

/// One chart of a time plot; a plot with two panels stacks them.
struct Panel {
    y_desc: &'static str,
    lines: Vec<Line>,
    /// Values are counts: label the y axis with whole numbers.
    integer: bool,
}

/// A step curve from `stats::cumulative` in (seconds, count).
fn steps(points: Vec<(u64, u64)>) -> Vec<(f64, f64)> {
    points
        .into_iter()
        .map(|(at, n)| (seconds(at), n as f64))
        .collect()
}

/// Most points drawn per line: a run of 60 000 deliveries would otherwise write megabytes of
/// SVG for what a plot of this size can show.
const MAX_POINTS: usize = 2000;

/// At most `max` of `points`, evenly spaced, the first and last kept.
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let last = points.len() - 1;
    (0..max).map(|i| points[i * last / (max - 1)]).collect()
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// One line per node, or min/median/max over nodes for large networks.
fn node_lines(series: &[NodeSeries]) -> Vec<Line> {
    let to_points = |points: &[(u64, f64)]| -> Vec<(f64, f64)> {
        points.iter().map(|(at, v)| (seconds(*at), *v)).collect()
    };
    if series.len() <= MAX_NODE_LINES {
        // A node that was down (or did not answer) for a while shows a gap, not a slope.
        return series
            .iter()
            .zip(SERIES_COLOURS.iter().cycle())
            .map(|((node, points), colour)| Line {
                segments: stats::split_at_gaps(points)
                    .into_iter()
                    .map(to_points)
                    .collect(),
                ..Line::solid(node, *colour, Vec::new())
            })
            .collect();
    }
    let spread = stats::spread(series);
    let pick = |f: fn(&stats::Spread) -> f64| -> Vec<(f64, f64)> {
        spread.iter().map(|s| (seconds(s.at_ms), f(s))).collect()
    };
    let n = series.len();
    let light = RGBColor(140, 180, 215);
    vec![
        Line {
            label: format!("max of {n} nodes"),
            colour: light,
            width: 1,
            segments: vec![pick(|s| s.max)],
        },
        Line::solid(
            &format!("median of {n} nodes"),
            SERIES_COLOURS[0],
            pick(|s| s.median),
        ),
        Line {
            label: format!("min of {n} nodes"),
            colour: light,
            width: 1,
            segments: vec![pick(|s| s.min)],
        },
    ]
}

/// Draws the panels of a time plot, sharing one time axis (0 to the end of the run or the
/// last point or fault) and one legend (lines, then fault kinds) on the right.
fn time_plot(
    dir: &Path,
    kind: PlotKind,
    run: &RunData,
    title: &str,
    panels: &[Panel],
) -> Result<PathBuf, ReportError> {
    let height = HEIGHT + (panels.len().saturating_sub(1) as u32) * (HEIGHT * 3 / 4);
    let last_point = panels
        .iter()
        .flat_map(|p| p.lines.iter().flat_map(|l| l.points().map(|pt| pt.0)))
        .fold(0.0, f64::max);
    let last_fault = run
        .faults
        .iter()
        .map(|f| seconds(f.at_ms))
        .fold(0.0, f64::max);
    let x_end = seconds(run.duration_ms)
        .max(last_point)
        .max(last_fault)
        .max(0.001);
    let faults = FaultMarks::new(&run.faults);
    render(dir, kind, (WIDTH, height), |root| {
        let area = root.titled(title, (FONT, TITLE_SIZE))?;
        if panels.iter().all(|p| p.lines.is_empty()) {
            return no_data(&area, "no data");
        }
        let (charts, legend) = area.split_horizontally(WIDTH - LEGEND_WIDTH);
        let panel_areas = charts.split_evenly((panels.len(), 1));
        for (panel, panel_area) in panels.iter().zip(&panel_areas) {
            draw_panel(panel_area, panel, &faults, x_end)?;
        }
        let mut entries: Vec<LegendEntry> = Vec::new();
        for panel in panels {
            for line in &panel.lines {
                if !entries.iter().any(|e| e.label == line.label) {
                    entries.push(LegendEntry {
                        label: line.label.clone(),
                        colour: line.colour,
                        width: line.width,
                        dashed: false,
                    });
                }
            }
        }
        entries.extend(faults.legend());
        draw_legend(&legend, &entries)
    })
}

fn draw_panel(area: &Area<'_>, panel: &Panel, faults: &FaultMarks<'_>, x_end: f64) -> DrawResult {
    if panel.lines.iter().all(|l| l.points().next().is_none()) {
        let what = format!("no data ({})", panel.y_desc);
        return no_data(area, &what);
    }
    let (width, height) = area.dim_in_pixel();
    let y_label_px = 72;
    let x_label_px = 50;
    let margin = 12;
    let plot_w = f64::from(width) - f64::from(y_label_px + 2 * margin);
    let plot_h = f64::from(height) - f64::from(x_label_px + 2 * margin);
    let placed = faults.place(x_end, plot_w);
    let rows_used = placed.iter().map(|p| p.row + 1).max().unwrap_or(0);
    let label_px = if rows_used == 0 {
        0.0
    } else {
        (rows_used as i32 * LABEL_ROW_PX + 8) as f64
    };
    let y_max = panel
        .lines
        .iter()
        .flat_map(|l| l.points().map(|p| p.1))
        .fold(0.0, f64::max);
    // Room above the data for the fault labels, and 5% more.
    let data_share = ((plot_h - label_px) / plot_h).clamp(0.4, 1.0);
    let y_end = (y_max.max(1.0) * 1.05) / data_share;
    let mut chart = ChartBuilder::on(area)
        .margin(margin)
        .x_label_area_size(x_label_px)
        .y_label_area_size(y_label_px)
        .build_cartesian_2d(0f64..x_end, 0f64..y_end)?;
    let integer = panel.integer;
    chart
        .configure_mesh()
        .x_desc("run time (s)")
        .y_desc(panel.y_desc)
        .x_label_formatter(&|v| format_number(*v))
        .y_label_formatter(&|v| {
            if integer {
                format!("{v:.0}")
            } else {
                format_number(*v)
            }
        })
        .y_labels(8)
        .label_style((FONT, AXIS_LABEL_SIZE))
        .axis_desc_style((FONT, AXIS_DESC_SIZE))
        .max_light_lines(1)
        .light_line_style(RGBColor(242, 242, 242))
        .draw()?;
    faults.draw(&mut chart, &placed, y_end)?;
    for line in &panel.lines {
        for segment in &line.segments {
            chart.draw_series(LineSeries::new(
                thin(segment, MAX_POINTS),
                line.colour.stroke_width(line.width),
            ))?;
        }
    }
    Ok(())
}

/// The faults of a run as drawn on a time axis.
struct FaultMarks<'a> {
    faults: &'a [FaultMark],
    /// Each kind seen, in order of first appearance, with its colour and count.
    kinds: Vec<(&'a str, RGBColor, usize)>,
}

/// Where a fault's label goes: which row from the top, and whether it sits left of the line.
struct Placed {
    index: usize,
    row: usize,
    left: bool,
}

impl<'a> FaultMarks<'a> {
    fn new(faults: &'a [FaultMark]) -> Self {
        let mut kinds: Vec<(&'a str, RGBColor, usize)> = Vec::new();
        let mut others = 0;
        for fault in faults {
            if let Some(kind) = kinds.iter_mut().find(|k| k.0 == fault.kind) {
                kind.2 += 1;
                continue;
            }
            let colour = fault_colour(&fault.kind).unwrap_or_else(|| {
                others += 1;
                OTHER_FAULT_COLOURS[(others - 1) % OTHER_FAULT_COLOURS.len()]
            });
            kinds.push((fault.kind.as_str(), colour, 1));
        }
        FaultMarks { faults, kinds }
    }

    fn colour(&self, kind: &str) -> RGBColor {
        self.kinds
            .iter()
            .find(|k| k.0 == kind)
            .map_or(BLACK, |k| k.1)
    }

    /// Places the labels in rows so that labels close in time do not overlap (as far as
    /// [`LABEL_ROWS`] rows allow); none when there are too many faults to label.
    fn place(&self, x_end: f64, plot_w: f64) -> Vec<Placed> {
        if self.faults.len() > MAX_FAULT_LABELS {
            return Vec::new();
        }
        let mut order: Vec<usize> = (0..self.faults.len()).collect();
        order.sort_by_key(|i| self.faults[*i].at_ms);
        let mut row_end = [f64::NEG_INFINITY; LABEL_ROWS];
        order
            .into_iter()
            .map(|index| {
                let fault = &self.faults[index];
                let x = seconds(fault.at_ms) / x_end * plot_w;
                let w = fault_label(fault).chars().count() as f64 * LABEL_CHAR_PX + 4.0;
                let left = x + w > plot_w;
                let (start, end) = if left { (x - w, x) } else { (x, x + w) };
                let row = row_end.iter().position(|e| *e < start).unwrap_or_else(|| {
                    (0..LABEL_ROWS)
                        .min_by(|a, b| row_end[*a].total_cmp(&row_end[*b]))
                        .unwrap_or(0)
                });
                row_end[row] = row_end[row].max(end);
                Placed { index, row, left }
            })
            .collect()
    }

    fn draw(&self, chart: &mut Chart<'_, '_>, placed: &[Placed], y_end: f64) -> DrawResult {
        // Many faults (a crash test's hundred kills) would hide the data: draw them fainter.
        let opacity = if self.faults.len() > MAX_FAULT_LABELS {
            0.35
        } else {
            0.85
        };
        for fault in self.faults {
            let x = seconds(fault.at_ms);
            chart.plotting_area().draw(&DashedPathElement::new(
                vec![(x, 0.0), (x, y_end)],
                6,
                4,
                self.colour(&fault.kind).mix(opacity).stroke_width(1),
            ))?;
        }
        for p in placed {
            let fault = &self.faults[p.index];
            let colour = self.colour(&fault.kind);
            let (dx, anchor) = if p.left {
                (-3, HPos::Right)
            } else {
                (3, HPos::Left)
            };
            let style = (FONT, LABEL_FONT_SIZE)
                .into_font()
                .color(&colour)
                .pos(Pos::new(anchor, VPos::Top));
            let dy = 3 + p.row as i32 * LABEL_ROW_PX;
            chart.plotting_area().draw(
                &(EmptyElement::at((seconds(fault.at_ms), y_end))
                    + Text::new(fault_label(fault), (dx, dy), style)),
            )?;
        }
        Ok(())
    }

    fn legend(&self) -> Vec<LegendEntry> {
        self.kinds
            .iter()
            .map(|(kind, colour, n)| LegendEntry {
                label: format!("{kind} ({n})"),
                colour: *colour,
                width: 1,
                dashed: true,
            })
            .collect()
    }
}

/// `scenario: ` before a plot's title, so that a plot says which run it shows.
fn scenario_prefix(run: &RunData) -> String {
    if run.scenario.is_empty() {
        String::new()
    } else {
        format!("{}: ", run.scenario)
    }
}

/// A fault's label on the chart: kind and target, cut to [`LABEL_MAX_CHARS`].
pub(crate) fn fault_label(fault: &FaultMark) -> String {
    let label = format!("{} {}", fault.kind, fault.target);
    if label.chars().count() <= LABEL_MAX_CHARS {
        return label;
    }
    let mut cut: String = label.chars().take(LABEL_MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The colour of a well-known fault kind.
fn fault_colour(kind: &str) -> Option<RGBColor> {
    Some(match kind {
        "kill" => RGBColor(200, 0, 0),
        "restart" => RGBColor(0, 150, 0),
        "stop" => RGBColor(235, 120, 0),
        "start" => RGBColor(0, 140, 140),
        "partition" => RGBColor(130, 0, 170),
        "heal" => RGBColor(0, 90, 220),
        "latency" => RGBColor(150, 90, 30),
        _ => return None,
    })
}

/// The colour of a hire outcome (the `i`th line of the plot, for outcomes not named).
fn outcome_colour(outcome: &str, i: usize) -> RGBColor {
    match outcome {
        "completed" => RGBColor(44, 160, 44),
        "failed" => RGBColor(214, 39, 40),
        "canceled" => RGBColor(227, 119, 194),
        "expired" => RGBColor(255, 127, 14),
        "rejected" => RGBColor(148, 103, 189),
        "unfinished" => RGBColor(31, 119, 180),
        "error" => RGBColor(140, 86, 75),
        _ => SERIES_COLOURS[i % SERIES_COLOURS.len()],
    }
}

struct LegendEntry {
    label: String,
    colour: RGBColor,
    width: u32,
    dashed: bool,
}

/// The legend column: a short line (dashed for faults) and a label per entry.
fn draw_legend(area: &Area<'_>, entries: &[LegendEntry]) -> DrawResult {
    const ROW: i32 = 21;
    const TOP: i32 = 24;
    let (_, height) = area.dim_in_pixel();
    let fits = usize::try_from((height as i32 - TOP - ROW) / ROW).unwrap_or(0);
    let text = (FONT, LEGEND_SIZE)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, entry) in entries.iter().take(fits).enumerate() {
        let y = TOP + i as i32 * ROW;
        let style = entry.colour.stroke_width(entry.width.max(2));
        if entry.dashed {
            area.draw(&DashedPathElement::new(vec![(8, y), (36, y)], 5, 3, style))?;
        } else {
            area.draw(&PathElement::new(vec![(8, y), (36, y)], style))?;
        }
        let label: String = entry.label.chars().take(30).collect();
        area.draw(&Text::new(label, (42, y), text.clone()))?;
    }
    if entries.len() > fits {
        let more = format!("… {} more", entries.len() - fits);
        let y = TOP + fits as i32 * ROW;
        area.draw(&Text::new(more, (42, y), text))?;
    }
    Ok(())
}

/// A panel with only a message in its middle.
fn no_data(area: &Area<'_>, message: &str) -> DrawResult {
    let (width, height) = area.dim_in_pixel();
    let style = (FONT, 24)
        .into_font()
        .color(&RGBColor(110, 110, 110))
        .pos(Pos::new(HPos::Center, VPos::Center));
    let centre = (width as i32 / 2, height as i32 / 2);
    area.draw(&Text::new(message.to_string(), centre, style))
}

/// An axis label: whole numbers without decimals, others with as few as read well.
fn format_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draws into an SVG string and writes it to `dir/kind.file_name()`.
fn render(
    dir: &Path,
    kind: PlotKind,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<PathBuf, ReportError> {
    let path = dir.join(kind.file_name());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present())
            .map_err(|cause| ReportError::Plot {
                path: path.clone(),
                cause,
            })?;
    }
    super::write_file(&path, svg.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod thin_tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_the_count() {
        let pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, i as f64)).collect();
        let t = thin(&pts, 2000);
        assert_eq!(t.len(), 2000);
        assert_eq!(t[0], (0.0, 0.0));
        assert_eq!(t[1999], (9999.0, 9999.0));
        assert_eq!(thin(&pts[..5], 2000).len(), 5);
    }
}
