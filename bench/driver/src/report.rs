//! The results table: medians per contender, ratios, the targets,
//! printed and written as markdown.

use std::fmt::Write as _;

use crate::measure::{Sample, median};

/// A target on a row's ratio.
#[derive(Clone, Copy)]
pub enum Target {
    /// Reported, no target.
    Report,
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::Report => "report".into(),
            Target::AtLeast(x) => format!("≥ {x:.2}"),
            Target::AtMost(x) => format!("≤ {x:.2}"),
        }
    }

    fn verdict(self, ratio: f64) -> &'static str {
        let met = match self {
            Target::Report => return "",
            Target::AtLeast(x) => ratio >= x,
            Target::AtMost(x) => ratio <= x,
        };
        if ratio.is_nan() {
            "?"
        } else if met {
            "met"
        } else {
            "MISSED"
        }
    }
}

/// How a metric is derived from one run's sample.
#[derive(Clone, Copy)]
pub enum Metric {
    /// MiB per second for `bytes` moved.
    Throughput { bytes: u64 },
    /// CPU seconds per GiB for `bytes` moved.
    CpuPerGib { bytes: u64 },
    /// Peak RSS in MiB.
    PeakRss,
    /// Items per second (files, or uploads).
    PerSecond { items: usize },
    /// CPU milliseconds per item.
    CpuMsPer { items: usize },
    /// CPU microseconds per item (small files).
    CpuUsPer { items: usize },
    /// Wall milliseconds per item.
    WallMsPer { items: usize },
}

impl Metric {
    pub fn of(self, s: &Sample) -> f64 {
        let wall = s.wall.as_secs_f64();
        let cpu = s.cpu.as_secs_f64();
        match self {
            Metric::Throughput { bytes } => bytes as f64 / MIB / wall,
            Metric::CpuPerGib { bytes } => cpu / (bytes as f64 / GIB),
            Metric::PeakRss => s.peak_rss_kib as f64 / 1024.0,
            Metric::PerSecond { items } => items as f64 / wall,
            Metric::CpuMsPer { items } => cpu * 1000.0 / items as f64,
            Metric::CpuUsPer { items } => cpu * 1e6 / items as f64,
            Metric::WallMsPer { items } => wall * 1000.0 / items as f64,
        }
    }

    pub fn median(self, samples: &[Sample]) -> f64 {
        median(samples.iter().map(|s| self.of(s)).collect())
    }

    fn decimals(self) -> usize {
        match self {
            Metric::Throughput { .. } | Metric::PerSecond { .. } => 0,
            Metric::CpuPerGib { .. } => 3,
            Metric::PeakRss => 1,
            Metric::CpuMsPer { .. } | Metric::WallMsPer { .. } => 3,
            Metric::CpuUsPer { .. } => 1,
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// The samples of one workload.
pub struct Runs<'a> {
    pub ours: &'a [Sample],
    pub openssh: &'a [Sample],
    pub reference: Option<&'a [Sample]>,
}

impl<'a> Runs<'a> {
    /// From `alternate`'s result: ours, OpenSSH, then an optional reference.
    pub fn from(samples: &'a [Vec<Sample>]) -> Runs<'a> {
        Runs {
            ours: &samples[0],
            openssh: &samples[1],
            reference: samples.get(2).map(Vec::as_slice),
        }
    }
}

pub struct Row {
    pub test: String,
    pub metric: String,
    pub openssh: String,
    pub ours: String,
    pub reference: String,
    pub ratio: String,
    pub target: String,
    pub verdict: String,
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

impl Table {
    /// A row comparing ours with OpenSSH (ratio ours/OpenSSH), with the
    /// reference's value (dd, the transport ceiling) beside them if any.
    pub fn compare(
        &mut self,
        test: &str,
        label: &str,
        metric: Metric,
        runs: &Runs<'_>,
        target: Target,
    ) {
        let o = metric.median(runs.openssh);
        let u = metric.median(runs.ours);
        let r = runs.reference.map(|r| metric.median(r));
        let ratio = u / o;
        let d = metric.decimals();
        self.rows.push(Row {
            test: test.into(),
            metric: label.into(),
            openssh: format!("{o:.d$}"),
            ours: format!("{u:.d$}"),
            reference: r.map_or(String::new(), |r| format!("{r:.d$}")),
            ratio: format!("{ratio:.2}x"),
            target: target.text(),
            verdict: target.verdict(ratio).into(),
        });
    }

    /// A row with a ratio against something other than OpenSSH (ours/dd,
    /// ours/transport ceiling); the values go in their own columns.
    pub fn against(
        &mut self,
        test: &str,
        label: &str,
        metric: Metric,
        numerator: (&str, &[Sample]),
        denominator: &[Sample],
        target: Target,
    ) {
        let n = metric.median(numerator.1);
        let r = metric.median(denominator);
        let ratio = n / r;
        let d = metric.decimals();
        let (openssh, ours) = match numerator.0 {
            "ours" => (String::new(), format!("{n:.d$}")),
            _ => (format!("{n:.d$}"), String::new()),
        };
        self.rows.push(Row {
            test: test.into(),
            metric: label.into(),
            openssh,
            ours,
            reference: format!("{r:.d$}"),
            ratio: format!("{ratio:.2}x"),
            target: target.text(),
            verdict: target.verdict(ratio).into(),
        });
    }

    /// Wall time per item above the reference's (the null server): the
    /// part of each server's per-file time that is its own.
    pub fn above_floor(&mut self, test: &str, label: &str, items: usize, runs: &Runs<'_>) {
        let per_item = Metric::WallMsPer { items };
        let Some(reference) = runs.reference else {
            return;
        };
        let floor = per_item.median(reference) * 1000.0;
        let o = per_item.median(runs.openssh) * 1000.0 - floor;
        let u = per_item.median(runs.ours) * 1000.0 - floor;
        self.rows.push(Row {
            test: test.into(),
            metric: label.into(),
            openssh: format!("{o:.1}"),
            ours: format!("{u:.1}"),
            reference: format!("({floor:.1} µs floor)"),
            ratio: format!("{:.2}x", u / o),
            target: Target::Report.text(),
            verdict: String::new(),
        });
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| test | metric | OpenSSH | ours | reference | ratio | target | |\n\
             |---|---|--:|--:|--:|--:|---|---|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.test, r.metric, r.openssh, r.ours, r.reference, r.ratio, r.target, r.verdict
            );
        }
        out
    }
}
