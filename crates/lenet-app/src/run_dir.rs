//! The files of a run directory (`runs/TIMESTAMP` or `--out`), and the training-curve points
//! kept beside the metrics so a resumed run draws its whole history.

use crate::file_out::write_atomic;
use crate::plot::CurvePoint;
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
        self.root.join("config.json")
    }

    /// The model and optimizer after the last completed epoch.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join(CHECKPOINT_FILE)
    }

    /// One row per epoch (`metrics.csv`).
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }

    /// The points of the training curves (`curve_points.csv`).
    pub fn curve_points(&self) -> PathBuf {
        self.root.join("curve_points.csv")
    }

    /// The chart of the curves (`curves.png`).
    pub fn curves(&self) -> PathBuf {
        self.root.join("curves.png")
    }
}

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
}
