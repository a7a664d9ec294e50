//! The `lenet` binary: train, evaluate, inspect and explain LeNet on Fashion-MNIST.
//!
//! Usage errors exit with status 2 (clap's, and [`cli::UsageError`]s found once the settings are
//! resolved), runtime errors with status 1 and one line on stderr.

use clap::Parser;
use lenet_app::cli::{self, Cli, Command};
use lenet_app::{commands, interrupt};
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

/// The error and its causes on one line, each said once: a library error whose message
/// already ends with its cause's is not followed by that cause again.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Whether a GPU fault (its limits, memory, compiler or driver) caused the error.
fn is_device_fault(e: &anyhow::Error) -> bool {
    use conv_kernels::KernelError;
    e.chain().any(|cause| {
        cause
            .downcast_ref::<KernelError>()
            .or_else(|| cause.downcast_ref::<Box<KernelError>>().map(|b| &**b))
            .is_some_and(KernelError::is_device_fault)
    })
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
            if is_device_fault(&e) {
                eprintln!(
                    "error: {} (the GPU failed, not the input: rerun with --device cpu)",
                    one_line(&e)
                );
            } else {
                eprintln!("error: {}", one_line(&e));
            }
            if e.downcast_ref::<cli::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
