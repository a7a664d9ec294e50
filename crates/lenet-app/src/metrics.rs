//! Per-epoch metrics: the rows of `metrics.csv`, written atomically and read back on resume.

use crate::file_out::write_atomic;
use anyhow::{Context, bail};
use std::path::Path;

/// One epoch's results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: u32,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Training accuracy over the epoch.
    pub train_acc: f64,
    /// Accuracy on the test set after the epoch.
    pub test_acc: f64,
    /// Training examples per second (training time only, as d2l counts).
    pub examples_per_sec: f64,
    /// Seconds spent training in this epoch.
    pub seconds: f64,
}

const HEADER: &str = "epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds";

/// Writes all rows to `path` (atomically).
pub fn write_csv(path: &Path, rows: &[EpochMetrics]) -> anyhow::Result<()> {
    let mut out = String::from(HEADER);
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.1},{:.3}\n",
            r.epoch, r.train_loss, r.train_acc, r.test_acc, r.examples_per_sec, r.seconds
        ));
    }
    write_atomic(path, out.as_bytes())
}

/// Reads rows written by [`write_csv`].
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<EpochMetrics>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        bail!("{}: unexpected header (want `{HEADER}`)", path.display());
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let bad = || format!("{}: line {} is malformed: `{line}`", path.display(), i + 2);
            if f.len() != 6 {
                bail!(bad());
            }
            let num = |k: usize| f[k].parse::<f64>().with_context(bad);
            Ok(EpochMetrics {
                epoch: f[0].parse().with_context(bad)?,
                train_loss: num(1)?,
                train_acc: num(2)?,
                test_acc: num(3)?,
                examples_per_sec: num(4)?,
                seconds: num(5)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip_and_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        let rows = vec![EpochMetrics {
            epoch: 1,
            train_loss: 2.25,
            train_acc: 0.1,
            test_acc: 0.25,
            examples_per_sec: 30000.5,
            seconds: 2.0,
        }];
        write_csv(&p, &rows).unwrap();
        assert_eq!(read_csv(&p).unwrap(), rows);
        std::fs::write(&p, "nonsense\n").unwrap();
        assert!(read_csv(&p).is_err());
    }
}
