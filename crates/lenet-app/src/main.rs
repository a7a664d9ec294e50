//! The `lenet` binary: train, evaluate, inspect and explain LeNet on Fashion-MNIST.
//!
//! Usage errors exit with status 2 (clap), runtime errors with status 1 and one line on stderr.

mod checkpoint_io;
mod cli;
mod data;
mod eval;
mod evaluate;
mod font;
mod image_input;
mod inspect;
mod metrics;
mod model;
mod plot;
mod png_out;
mod predict;
mod summary;
mod train;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a).map(drop),
        Command::Predict(a) => predict::run(a).map(drop),
        Command::Summary(a) => summary::run(a),
        Command::Inspect(a) => inspect::run(a).map(drop),
    }
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("internal error: {info}");
    }));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
