//! Running the `lenet` binary from the CLI test files (`cli.rs`, `cnn.rs`): the one copy of
//! the process helpers they share.

#![allow(dead_code)] // each test binary uses a different subset

use std::process::{Command, Output};

/// The `lenet` binary under test, with a runtime directory so Mesa stays quiet.
pub fn lenet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lenet"));
    c.env("XDG_RUNTIME_DIR", "/tmp");
    c
}

/// Runs `lenet args...` to completion.
pub fn run(args: &[&str]) -> Output {
    lenet().args(args).output().expect("start lenet")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `lenet args...`, asserts success and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "lenet {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
