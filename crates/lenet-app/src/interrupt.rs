//! Ctrl-C (SIGINT) and SIGTERM during a command: the first signal only raises a flag that the
//! training loop reads at each batch boundary (so it can save where it is); a second one ends
//! the process at once, with the same status a shell reports for a signal (128 + its number).

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A stop signal the process received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, a scheduler ending the job).
    Terminate,
}

impl StopSignal {
    /// The exit status a shell reports for a process ended by this signal: 130 or 143.
    pub fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }

    /// The signal's name, as `kill -l` spells it.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

/// Watches for SIGINT and SIGTERM from [`StopRequests::install`] on.
#[derive(Clone)]
pub struct StopRequests {
    raised: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
}

impl StopRequests {
    /// Installs the handlers. From now on the first SIGINT or SIGTERM is only recorded (see
    /// [`StopRequests::requested`]); a second one of either exits the process immediately with
    /// status 130 (SIGINT) or 143 (SIGTERM).
    pub fn install() -> anyhow::Result<StopRequests> {
        let raised = Arc::new(AtomicBool::new(false));
        let which = Arc::new(AtomicUsize::new(0));
        for (signal, code) in [(SIGINT, 130), (SIGTERM, 143)] {
            // Registered first, so it runs before the flag is set: it exits only when an
            // earlier signal already raised the flag.
            flag::register_conditional_shutdown(signal, code, Arc::clone(&raised))
                .and_then(|_| flag::register_usize(signal, Arc::clone(&which), signal as usize))
                .and_then(|_| flag::register(signal, Arc::clone(&raised)))
                .context("cannot install the Ctrl-C handler")?;
        }
        Ok(StopRequests { raised, which })
    }

    /// The stop signal received so far, if any.
    pub fn requested(&self) -> Option<StopSignal> {
        if !self.raised.load(Ordering::SeqCst) {
            return None;
        }
        Some(match self.which.load(Ordering::SeqCst) as i32 {
            SIGTERM => StopSignal::Terminate,
            _ => StopSignal::Interrupt,
        })
    }
}

/// The error a command ends with when a stop signal ended it: `main` prints its message (what
/// was saved, how to go on) and exits with the signal's status instead of 1.
#[derive(Debug)]
pub struct Stopped {
    /// The signal that stopped the command.
    pub signal: StopSignal,
    /// What was saved and how to continue.
    pub message: String,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Stopped {}
