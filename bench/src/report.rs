//! How figures are printed: `name: value unit  (target …, ratio to floor …)`.
//!
//! Targets are reported, never asserted: a missed target prints `MISSED` and the run still
//! succeeds. The report remembers what was missed so the run can end with a summary.

/// What a figure should be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// At most this value (latencies, memory, times).
    AtMost(f64),
    /// At least this value (throughput, counts).
    AtLeast(f64),
}

impl Goal {
    /// Whether `value` meets the goal.
    pub fn met(self, value: f64) -> bool {
        match self {
            Goal::AtMost(limit) => value <= limit,
            Goal::AtLeast(limit) => value >= limit,
        }
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Goal::AtMost(limit) => format!("≤ {} {unit}", number(limit)),
            Goal::AtLeast(limit) => format!("≥ {} {unit}", number(limit)),
        }
    }
}

/// One printed figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The measurement.
    pub value: f64,
    /// Its unit (`ms`, `msg/s`, `KiB` …).
    pub unit: &'static str,
    /// The target from the issue, if this figure has one.
    pub goal: Option<Goal>,
    /// The same measurement against the raw echo server, for the ratio.
    pub floor: Option<f64>,
    /// How it was measured (sizes, rates), printed after the target.
    pub note: String,
}

impl Figure {
    /// A figure with a target and a floor to compare with.
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Figure {
        Figure {
            name: name.into(),
            value,
            unit,
            goal: None,
            floor: None,
            note: String::new(),
        }
    }

    /// Sets the target.
    pub fn goal(mut self, goal: Goal) -> Figure {
        self.goal = Some(goal);
        self
    }

    /// Sets the floor value (same unit) the ratio is taken against.
    pub fn floor(mut self, floor: f64) -> Figure {
        self.floor = Some(floor);
        self
    }

    /// Sets the note.
    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.note = note.into();
        self
    }

    /// Whether the figure has a target and misses it.
    pub fn missed(&self) -> bool {
        self.goal.is_some_and(|goal| !goal.met(self.value))
    }

    /// The printed line.
    pub fn render(&self) -> String {
        let mut parts = Vec::new();
        match self.goal {
            Some(goal) => {
                let verdict = if goal.met(self.value) {
                    "met"
                } else {
                    "MISSED"
                };
                parts.push(format!("target {} {verdict}", goal.describe(self.unit)));
            }
            None if self.floor.is_some() => parts.push("no target".to_string()),
            None => parts.push("floor".to_string()),
        }
        if let Some(floor) = self.floor {
            parts.push(format!(
                "ratio to floor {} (echo {} {})",
                ratio(self.value, floor),
                number(floor),
                self.unit
            ));
        }
        if !self.note.is_empty() {
            parts.push(self.note.clone());
        }
        format!(
            "{}: {} {}  ({})",
            self.name,
            number(self.value),
            self.unit,
            parts.join(", ")
        )
    }
}

/// `value / floor` as `3.2x`; `n/a` when the floor is zero or either is not a number.
pub fn ratio(value: f64, floor: f64) -> String {
    if !(value.is_finite() && floor.is_finite()) || floor == 0.0 {
        return "n/a".to_string();
    }
    let r = value / floor;
    if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 1.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

/// A number with precision that suits its size: `19,000`, `312`, `7.4`, `0.085`.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    let magnitude = value.abs();
    if magnitude < 1000.0 && value.fract() == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 1000.0 {
        let whole = value.round() as i64;
        let digits = whole.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if whole < 0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Everything printed so far, for the closing summary.
#[derive(Debug, Default)]
pub struct Report {
    /// Figures with a target that met it.
    met: Vec<String>,
    /// Figures with a target that missed it.
    missed: Vec<String>,
    /// Scenarios that could not be measured at all, with why.
    failed: Vec<String>,
}

impl Report {
    /// Prints a figure and remembers its verdict.
    pub fn print(&mut self, figure: &Figure) {
        println!("{}", figure.render());
        if figure.goal.is_some() {
            if figure.missed() {
                self.missed.push(figure.name.clone());
            } else {
                self.met.push(figure.name.clone());
            }
        }
    }

    /// Prints an informational line (sizes, checks) that has no target.
    pub fn info(&mut self, text: impl AsRef<str>) {
        println!("  {}", text.as_ref());
    }

    /// Records and prints a scenario that could not run.
    pub fn fail(&mut self, scenario: &str, why: impl std::fmt::Display) {
        println!("{scenario}: NOT MEASURED ({why})");
        self.failed.push(format!("{scenario}: {why}"));
    }

    /// Whether some scenario could not run at all (the bench itself is broken).
    pub fn has_failures(&self) -> bool {
        !self.failed.is_empty()
    }

    /// The closing lines.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "targets met: {} of {}",
            self.met.len(),
            self.met.len() + self.missed.len()
        )];
        if !self.missed.is_empty() {
            lines.push(format!("MISSED: {}", self.missed.join("; ")));
        }
        for failed in &self.failed {
            lines.push(format!("NOT MEASURED: {failed}"));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_sensible_precision() {
        assert_eq!(number(19_000.0), "19,000");
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(-4_500.0), "-4,500");
        assert_eq!(number(312.4), "312");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(7.456), "7.46");
        assert_eq!(number(0.0854), "0.085");
        assert_eq!(number(8.0), "8");
        assert_eq!(number(f64::NAN), "n/a");
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(0.5, 0.1), "5.0x");
        assert_eq!(ratio(50.0, 1.0), "50x");
        assert_eq!(ratio(1.0, 8.0), "0.12x");
        assert_eq!(ratio(1.0, 0.0), "n/a");
    }

    #[test]
    fn a_met_target_with_a_floor() {
        let figure = Figure::new("server RSS per idle visitor", 6.5, "KiB")
            .goal(Goal::AtMost(8.0))
            .floor(2.6)
            .note("19,000 visitors");
        assert!(!figure.missed());
        assert_eq!(
            figure.render(),
            "server RSS per idle visitor: 6.50 KiB  (target ≤ 8 KiB met, \
             ratio to floor 2.5x (echo 2.60 KiB), 19,000 visitors)"
        );
    }

    #[test]
    fn a_missed_target_is_reported_not_asserted() {
        let mut report = Report::default();
        let slow = Figure::new("persisted messages per second", 4_200.0, "msg/s")
            .goal(Goal::AtLeast(10_000.0))
            .floor(84_000.0);
        assert!(slow.missed());
        assert!(slow.render().contains("target ≥ 10,000 msg/s MISSED"));
        assert!(slow.render().contains("ratio to floor 0.05x"));
        report.print(&slow);
        report.print(&Figure::new("echo round trip p50", 0.05, "ms"));
        assert_eq!(
            report.summary(),
            vec![
                "targets met: 0 of 1".to_string(),
                "MISSED: persisted messages per second".to_string()
            ]
        );
        assert!(!report.has_failures());
    }

    #[test]
    fn a_floor_line_says_so() {
        let line = Figure::new("echo round trip p50", 0.0412, "ms")
            .note("1 connection")
            .render();
        assert_eq!(line, "echo round trip p50: 0.041 ms  (floor, 1 connection)");
    }
}
