//! One row of `cargo xtask bench`'s summary: a Tandem figure, the reference measured in the
//! same run, their ratio and the goal (issue 13). Every bench appends its rows as JSON lines
//! to the file named by [`ROWS_ENV`]; xtask prints them as one table and keeps it in
//! `docs/benchmarks.md`.

use serde::{Deserialize, Serialize};

/// The environment variable naming the file benches append their rows to (one JSON per line).
pub const ROWS_ENV: &str = "TANDEM_BENCH_ROWS";

/// What a ratio must be for the goal to be met.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    pub fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtLeast(goal) => ratio >= goal,
            Goal::AtMost(goal) => ratio <= goal,
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goal::AtLeast(goal) => write!(f, "≥ {goal:.2}×"),
            Goal::AtMost(goal) => write!(f, "≤ {goal:.2}×"),
        }
    }
}

/// A measured figure and its reference, in words a reader takes as they are ("22,964 req/s").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub measure: String,
    pub tandem: String,
    pub reference: String,
    /// Tandem's figure over the reference's; `None` when the run could not measure it (the row
    /// says so instead of printing a number).
    pub ratio: Option<f64>,
    pub goal: Goal,
}

impl Row {
    pub fn new(
        measure: impl Into<String>,
        tandem: impl Into<String>,
        reference: impl Into<String>,
        ratio: Option<f64>,
        goal: Goal,
    ) -> Row {
        Row {
            measure: measure.into(),
            tandem: tandem.into(),
            reference: reference.into(),
            ratio: ratio.filter(|r| r.is_finite()),
            goal,
        }
    }

    /// `None` when there is no ratio to judge.
    pub fn met(&self) -> Option<bool> {
        self.ratio.map(|r| self.goal.met(r))
    }

    /// Appends this row to the file named by [`ROWS_ENV`], when it is set (a bench run on its
    /// own just prints its tables). A row that cannot be written is reported on stderr and the
    /// bench goes on: its own tables still hold the figure.
    pub fn record(&self) {
        let Some(path) = std::env::var_os(ROWS_ENV) else {
            return;
        };
        let written = serde_json::to_string(self)
            .map_err(std::io::Error::other)
            .and_then(|line| {
                use std::io::Write as _;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?
                    .write_all(format!("{line}\n").as_bytes())
            });
        if let Err(e) = written {
            eprintln!("could not record the summary row {:?}: {e}", self.measure);
        }
    }
}

/// The rows of a rows file, in the order they were recorded.
pub fn parse_rows(text: &str) -> Result<Vec<Row>, serde_json::Error> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

/// The rows as one Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| measure | Tandem | reference (same run) | ratio | goal | met |\n|---|---:|---:|---:|---:|:---:|\n",
    );
    for row in rows {
        let ratio = row.ratio.map_or("n/a".to_owned(), |r| format!("{r:.2}×"));
        let met = match row.met() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "—",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {ratio} | {} | {met} |\n",
            row.measure, row.tandem, row.reference, row.goal
        ));
    }
    out
}

/// `n` with thousands separators, as the tables print counts and rates ("22,964").
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_judge_ratios_and_missing_ratios_are_not_judged() {
        assert!(Goal::AtLeast(0.8).met(0.8));
        assert!(!Goal::AtLeast(0.8).met(0.79));
        assert!(Goal::AtMost(1.0).met(0.5));
        assert!(!Goal::AtMost(1.0).met(1.01));
        let missing = Row::new("m", "n/a", "r", Some(f64::NAN), Goal::AtMost(1.0));
        assert_eq!(missing.ratio, None);
        assert_eq!(missing.met(), None);
    }

    #[test]
    fn rows_survive_the_file_and_print_as_one_table() {
        let rows = vec![
            Row::new("GET", "1 req/s", "2 req/s", Some(0.5), Goal::AtLeast(0.8)),
            Row::new("lag", "4 ms", "10 ms", Some(0.4), Goal::AtMost(1.0)),
        ];
        let file: String = rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        assert_eq!(parse_rows(&file).unwrap(), rows);
        let table = markdown(&rows);
        assert!(table.contains("| GET | 1 req/s | 2 req/s | 0.50× | ≥ 0.80× | no |"));
        assert!(table.contains("| lag | 4 ms | 10 ms | 0.40× | ≤ 1.00× | yes |"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(22964.0), "22,964");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
        assert_eq!(thousands(-1234.0), "-1,234");
    }
}
