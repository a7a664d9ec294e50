//! Project automation for Fovea: `cargo xtask <command>`.

mod bench;
mod bench_device;
mod ci;
mod compare;
mod download;
mod fuzz;
mod test_kernels;
mod train;

use clap::{Parser, Subcommand};

/// Fovea's project tasks.
#[derive(Parser)]
#[command(name = "cargo xtask", about = "Fovea project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Format check, clippy with warnings denied, and the whole test suite (what CI runs).
    Ci(ci::CiArgs),
    /// Fetch and verify a dataset into the data directory, saying where each file came from.
    Download(download::DownloadArgs),
    /// Build in release and run `lenet train` (which fetches the data when needed).
    Train(train::TrainArgs),
    /// Check every kernel on every device against the reference with many random cases.
    TestKernels(test_kernels::TestKernelsArgs),
    /// Run the criterion benchmarks.
    Bench(bench::BenchArgs),
    /// The prepared GPU run: every model's step on --device gpu and a 2-epoch seed training, as JSON.
    BenchDevice(bench_device::BenchDeviceArgs),
    /// Fovea against PyTorch, step-only examples/sec, run in alternation.
    Compare(compare::CompareArgs),
    /// Run the cargo-fuzz targets (nightly and cargo-fuzz needed) and report executions.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci(args) => ci::run(args),
        Command::Download(args) => download::run(args),
        Command::Train(args) => train::run(args),
        Command::TestKernels(args) => test_kernels::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchDevice(args) => bench_device::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Fuzz(args) => fuzz::run(args),
    }
}
