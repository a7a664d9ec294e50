//! The golden harness: every case of an op from every golden directory
//! ([`tensor::golden::default_dirs`]: `FOVEA_GOLDEN_DIR`, a `:`-separated list, else
//! `../shared/golden` and `../shared/golden-cnn` beside the workspace), replayed on a device.
//!
//! Each test decides which ops it replays, by name. A directory without cases of an op is no
//! error, but a replay that finds none in any directory fails, so it cannot pass vacuously.
//! Comparisons use the case's own tolerance ([`GoldenCase::compare`]); a failure names the
//! case, its directory, the tensor and the device.

use crate::check::TestResult;
use conv_kernels::{Device, DeviceTensor};
use std::fmt::Display;
use std::path::PathBuf;
use tensor::golden::{self, Golden};

pub use tensor::golden::GoldenCase;

/// Every case of `op` from every golden directory ([`golden::default_dirs`]); see [`cases_in`].
pub fn cases(op: &str) -> TestResult<Vec<GoldenCase>> {
    cases_in(&golden::default_dirs()?, op)
}

/// Every case of `op` from the directories `dirs`, in directory then manifest order; an error
/// when none of them has one (or a directory or case fails to load).
pub fn cases_in(dirs: &[PathBuf], op: &str) -> TestResult<Vec<GoldenCase>> {
    let mut cases = Vec::new();
    for dir in dirs {
        cases.extend(Golden::open(dir)?.load_cases(op)?);
    }
    if cases.is_empty() {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(format!(
            "no `{op}` golden cases in {} (set {} to directories that have some)",
            dirs.join(", "),
            golden::GOLDEN_DIR_ENV
        )
        .into());
    }
    Ok(cases)
}

/// Runs `body` on `dev` for every case of `op` (see [`cases`]), stopping at the first failure
/// with a message naming the case, its directory and the device (the body's error names the
/// tensor, as [`GoldenCase::compare`] does).
pub fn replay<E: Display>(
    dev: &Device,
    op: &str,
    body: impl Fn(&Device, &GoldenCase) -> Result<(), E>,
) -> TestResult {
    for case in &cases(op)? {
        body(dev, case).map_err(|e| {
            format!(
                "golden case `{}` ({}) on {}: {e}",
                case.name,
                case.dir.display(),
                dev.name()
            )
        })?;
    }
    Ok(())
}

/// Reads `got` back from `dev` and compares it with the case's tensor `name` under the case's
/// tolerance.
pub fn compare_device(
    dev: &Device,
    case: &GoldenCase,
    name: &str,
    got: &DeviceTensor,
) -> TestResult {
    case.compare(name, &dev.to_host(got)?)?;
    Ok(())
}
