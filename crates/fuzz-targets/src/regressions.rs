//! Replaying the fuzzers' regression inputs in the ordinary test suite (no nightly needed):
//! every file in `fuzz/regressions/<target>/` goes through the function the fuzz target
//! `<target>` runs, and must come back without a panic (an `Err` is the expected answer to a
//! damaged input).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The folder of `target`'s regression inputs: `fuzz/regressions/<target>` in the workspace.
pub fn regressions_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target)
}

/// Feeds every regression input of `target` to `run` and fails, naming each file, when `run`
/// panics on any of them or when the folder holds none (so nothing passes vacuously). Returns
/// how many inputs were replayed.
pub fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let dir = regressions_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    let mut panicked = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
            panicked.push(file.display().to_string());
        }
    }
    assert!(panicked.is_empty(), "{target} panicked on: {panicked:?}");
    files.len()
}
