//! The files of a run directory (`runs/TIMESTAMP` or `--out`), and the training-curve points
//! kept beside the metrics so a resumed run draws its whole history.

use crate::file_out::write_atomic;
use crate::plot::CurvePoint;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The checkpoint file inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// `path` itself, or the checkpoint inside it when it is a run directory.
pub fn checkpoint_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    }
}

/// A run directory and the names of the files `lenet train` keeps in it.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The directory.
    pub root: PathBuf,
}

impl RunDir {
    /// `--out DIR` or `--resume DIR`; without either, `runs/SECONDS-SINCE-1970`.
    pub fn new(dir: Option<&Path>) -> RunDir {
        let root = dir.map(Path::to_path_buf).unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            PathBuf::from("runs").join(format!("{secs}"))
        });
        RunDir { root }
    }

    /// Whether a checkpoint is already there (a run that must not be overwritten).
    pub fn holds_a_run(&self) -> bool {
        checkpoint_path(&self.root).is_file()
    }

    /// The settings (`config.json`).
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// The model and optimizer after the last completed epoch.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join(CHECKPOINT_FILE)
    }

    /// One row per epoch (`metrics.csv`).
    pub fn metrics(&self) -> PathBuf {
        self.root.join(METRICS_FILE)
    }

    /// The points of the training curves (`curve_points.csv`).
    pub fn curve_points(&self) -> PathBuf {
        self.root.join(POINTS_FILE)
    }

    /// The chart of the curves (`curves.png`).
    pub fn curves(&self) -> PathBuf {
        self.root.join(CURVES_FILE)
    }

    /// Deletes the temporary files an interrupted atomic write left in the directory
    /// (`.NAME.tmp.PID.N`, see [`crate::file_out`]); returns how many. Only run files' own
    /// temporaries are touched.
    pub fn remove_stale_temporaries(&self) -> anyhow::Result<usize> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Ok(0); // No directory yet: nothing to clean.
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if is_temporary(&name.to_string_lossy()) && entry.path().is_file() {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("cannot remove {}", entry.path().display()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Whether `name` is a temporary of one of a run's files (`.config.json.tmp.123.0`).
fn is_temporary(name: &str) -> bool {
    RUN_FILES.iter().any(|file| {
        name.strip_prefix('.')
            .and_then(|rest| rest.strip_prefix(file))
            .and_then(|rest| rest.strip_prefix(".tmp."))
            .is_some()
    })
}

/// The files `lenet train` writes in a run directory.
const RUN_FILES: [&str; 5] = [
    CONFIG_FILE,
    CHECKPOINT_FILE,
    METRICS_FILE,
    POINTS_FILE,
    CURVES_FILE,
];
const CONFIG_FILE: &str = "config.json";
const METRICS_FILE: &str = "metrics.csv";
const POINTS_FILE: &str = "curve_points.csv";
const CURVES_FILE: &str = "curves.png";

/// Writes the curve points (atomically).
pub fn write_points(path: &Path, points: &[CurvePoint]) -> anyhow::Result<()> {
    let mut s = String::from("epoch,train_loss,train_acc\n");
    for p in points {
        s.push_str(&format!("{},{},{}\n", p.epoch, p.train_loss, p.train_acc));
    }
    write_atomic(path, s.as_bytes())
}

/// Reads points written by [`write_points`]; a missing file or a malformed line gives none.
pub fn read_points(path: &Path) -> Vec<CurvePoint> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<f64> = l.split(',').filter_map(|v| v.parse().ok()).collect();
            (f.len() == 3).then(|| CurvePoint {
                epoch: f[0],
                train_loss: f[1],
                train_acc: f[2],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_trip_and_a_missing_file_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(Some(dir.path()));
        let points = [
            CurvePoint {
                epoch: 0.2,
                train_loss: 2.25,
                train_acc: 0.125,
            },
            CurvePoint {
                epoch: 1.0,
                train_loss: 1.5,
                train_acc: 0.5,
            },
        ];
        assert!(read_points(&run.curve_points()).is_empty());
        write_points(&run.curve_points(), &points).unwrap();
        assert_eq!(read_points(&run.curve_points()), points);
        assert!(!run.holds_a_run());
        std::fs::write(run.checkpoint(), b"x").unwrap();
        assert!(run.holds_a_run());
        assert_eq!(checkpoint_path(dir.path()), run.checkpoint());
    }

    #[test]
    fn only_run_files_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(Some(dir.path()));
        for name in [
            ".checkpoint.safetensors.tmp.41.0",
            ".metrics.csv.tmp.7.3",
            "notes.txt",
            ".notes.txt.tmp.1.0",
            "metrics.csv",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(run.remove_stale_temporaries().unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".notes.txt.tmp.1.0", "metrics.csv", "notes.txt"]);
    }
}
