//! `cargo xtask fuzz [--target T] [--seconds N] [--runs R]`: runs the cargo-fuzz targets in
//! `fuzz/` (nightly and cargo-fuzz needed; CI replays their regression inputs instead). Seeds
//! come from valid files (`fuzz-seeds`: toy runs of every model); the corpus grows in
//! `fuzz/corpus/T`; each run's log is `fuzz/logs/T.log`, and what it finds lands in
//! `fuzz/artifacts/T/` and fails the command: minimise it, fix the bug, and commit the input
//! under `fuzz/regressions/T/` for `cargo test` to replay. Fuzz builds skip checksums
//! (`cfg(fuzzing)`: PNG chunk CRCs, for one), so correct them in a found input first, or the
//! ordinary build refuses it before reaching the bug.

use crate::ci::workspace_root;
use anyhow::{Context, bail};
use std::path::Path;
use std::process::{Command, Stdio};

/// libFuzzer options of one target beyond the common ones. png_input and checkpoint count
/// edges only (`-use_counters=0`): with hit counts, every input that loops over more rows or
/// tensors is "new", so the corpus drifts to ever larger inputs (png_input: 578 executions a
/// second with them, 5,270 without; checkpoint: 1,655 and 3,367, both beside other fuzzers).
fn extra_options(target: &str) -> &'static [&'static str] {
    match target {
        "png_input" | "checkpoint" => &["-use_counters=0"],
        _ => &[],
    }
}

/// The longest input libFuzzer makes for a target. A checkpoint's header (names, shapes,
/// offsets) lies in its first 16 KB (resnet-small's is 13.6 KB), and the tiny networks'
/// complete files are about 2 KB (see `fuzz_targets::checkpoint`). Compressed inputs are held small (gzip 4 KB, PNG 1 KB):
/// deflate inflates up to ~1000×, and the PNG decoder's per-row work under coverage
/// instrumentation made a few large decodes per second all the fuzzer did (335 executions a
/// second at 4 KB). Every chunk type, colour type, bit depth and interlacing fits in 1 KB.
fn max_len(target: &str) -> Option<usize> {
    match target {
        "checkpoint" => Some(16 << 10),
        "png_input" => Some(1 << 10),
        "idx_gzip" => Some(4 << 10),
        _ => None,
    }
}

/// libFuzzer's memory limits: any one allocation above it (a header that asks for a huge
/// buffer) and a whole process above it are failures.
const RSS_LIMIT_MB: u32 = 512;
/// AddressSanitizer keeps freed memory in quarantine (256 MB by default) to catch use after
/// free; that much counted against the RSS limit made a slow, input-free "out of memory" after
/// 2.9 million png_input runs. A smaller quarantine keeps the limit about the inputs.
const ASAN_OPTIONS: &str = "quarantine_size_mb=32";
/// Seconds one input may take before libFuzzer calls it a timeout.
const INPUT_TIMEOUT_S: u32 = 10;

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Only this target (a file name in fuzz/fuzz_targets/: idx_raw, idx_gzip, checkpoint,
    /// png_input, run_config).
    #[arg(long)]
    pub target: Option<String>,
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Stop a target after this many executions (default: only the time limit).
    #[arg(long)]
    pub runs: Option<u64>,
    /// Rebuild the seed corpora even when they exist.
    #[arg(long)]
    pub reseed: bool,
}

/// What one target's run did.
struct Outcome {
    target: String,
    executions: u64,
    seconds: u64,
    findings: Vec<String>,
}

/// Runs the chosen targets one after the other and prints executions and findings per target.
pub fn run(args: FuzzArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let fuzz = root.join("fuzz");
    let all = target_names(&fuzz)?;
    let targets: Vec<String> = match &args.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => bail!("no fuzz target `{t}`; the targets are {}", all.join(", ")),
        None => all,
    };
    check_cargo_fuzz(&fuzz)?;
    let seeds = fuzz.join("seeds");
    if args.reseed || targets.iter().any(|t| is_empty_dir(&seeds.join(t))) {
        write_seeds(&root, &seeds, &fuzz.join("target/seed-runs"))?;
    }
    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(fuzz_one(&fuzz, target, &args)?);
    }
    println!(
        "\n{:<12} {:>14} {:>8}  findings",
        "target", "executions", "seconds"
    );
    for o in &outcomes {
        let found = if o.findings.is_empty() {
            "none".into()
        } else {
            o.findings.join(", ")
        };
        println!(
            "{:<12} {:>14} {:>8}  {found}",
            o.target, o.executions, o.seconds
        );
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.findings.is_empty())
        .map(|o| o.target.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzzing found failures in {}: see fuzz/artifacts/<target>/ (reproduce with \
             `cargo +nightly fuzz run <target> <file>` in fuzz/)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// Fails with what to install when `cargo +nightly fuzz` is not there.
fn check_cargo_fuzz(fuzz: &Path) -> anyhow::Result<()> {
    let ok = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .current_dir(fuzz)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        bail!(
            "`cargo +nightly fuzz` is not available: install a nightly toolchain \
             (`rustup toolchain install nightly`) and cargo-fuzz (`cargo install cargo-fuzz`)"
        );
    }
    Ok(())
}

/// [`ASAN_OPTIONS`] after the caller's own, which win.
fn asan_options() -> String {
    match std::env::var("ASAN_OPTIONS") {
        Ok(own) if !own.is_empty() => format!("{ASAN_OPTIONS}:{own}"),
        _ => ASAN_OPTIONS.to_string(),
    }
}

/// The targets: the files in `fuzz/fuzz_targets/`, by name.
fn target_names(fuzz: &Path) -> anyhow::Result<Vec<String>> {
    let dir = fuzz.join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .filter_map(|e| Some(e.file_name().to_str()?.strip_suffix(".rs")?.to_string()))
        .collect();
    names.sort();
    Ok(names)
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// Builds and runs `fuzz-seeds` (the test profile, already built by `cargo test`): the seed
/// corpora under `seeds`.
fn write_seeds(root: &Path, seeds: &Path, work: &Path) -> anyhow::Result<()> {
    println!("==> writing seed corpora to {}", seeds.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "-p",
            "fovea-fuzz-targets",
            "--bin",
            "fuzz-seeds",
            "--",
        ])
        .arg(seeds)
        .arg(work)
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("fuzz-seeds failed ({status})");
    }
    Ok(())
}

/// Fuzzes one target for the time (and runs) asked, over its corpus, its seeds and its
/// regression inputs; returns its executions and the files it left in its artifacts folder.
fn fuzz_one(fuzz: &Path, target: &str, args: &FuzzArgs) -> anyhow::Result<Outcome> {
    let corpus = fuzz.join("corpus").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    let logs = fuzz.join("logs");
    for dir in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let before = artifact_files(&artifacts)?;
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    println!(
        "==> fuzzing {target} for {} s (log: {})",
        args.seconds,
        log_path.display()
    );
    let mut cmd = Command::new("cargo");
    cmd.current_dir(fuzz)
        .args(["+nightly", "fuzz", "run", target])
        .arg(&corpus)
        .arg(fuzz.join("seeds").join(target))
        .arg(fuzz.join("regressions").join(target))
        .arg("--")
        .env("ASAN_OPTIONS", asan_options())
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-malloc_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_S}"))
        .arg(format!("-max_total_time={}", args.seconds))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stdout(log.try_clone()?)
        .stderr(log);
    cmd.args(extra_options(target));
    if let Some(n) = max_len(target) {
        cmd.arg(format!("-max_len={n}"));
    }
    if let Some(runs) = args.runs {
        cmd.arg(format!("-runs={runs}"));
    }
    let start = std::time::Instant::now();
    let status = cmd.status().context("could not start cargo fuzz")?;
    let seconds = start.elapsed().as_secs();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let stat = |key: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
            .next_back()
    };
    let findings: Vec<String> = artifact_files(&artifacts)?
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    let executions = stat("stat::number_of_executed_units:").unwrap_or(0);
    if !status.success() && findings.is_empty() {
        bail!(
            "cargo fuzz run {target} failed ({status}); see {}",
            log_path.display()
        );
    }
    Ok(Outcome {
        target: target.to_string(),
        executions,
        seconds: fuzzing_seconds(&text).unwrap_or(seconds),
        findings,
    })
}

/// The seconds libFuzzer says it fuzzed (`Done N runs in S second(s)`), without the build.
fn fuzzing_seconds(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| {
            l.split(" runs in ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .next_back()
}

fn artifact_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}
