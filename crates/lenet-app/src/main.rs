//! The `lenet` binary: train, evaluate, inspect and explain LeNet on Fashion-MNIST.
//!
//! Usage errors exit with status 2 (clap's, and [`cli::UsageError`]s found once the settings are
//! resolved), runtime errors with status 1 and one line on stderr.

mod cli;
mod commands;
mod config;
mod data;
mod device;
mod file_out;
mod font;
mod image_input;
mod inference;
mod interrupt;
mod metrics;
mod models;
mod plot;
mod restore;
mod run_dir;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(a) => commands::train::run(a),
        Command::Eval(a) => commands::eval::run(a).map(drop),
        Command::Predict(a) => commands::predict::run(a).map(drop),
        Command::Summary(a) => commands::summary::run(a),
        Command::Inspect(a) => commands::inspect::run(a).map(drop),
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
            if let Some(stopped) = e.downcast_ref::<interrupt::Stopped>() {
                eprintln!("{stopped}");
                return ExitCode::from(stopped.signal.exit_code());
            }
            eprintln!("error: {e:#}");
            if e.downcast_ref::<cli::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
