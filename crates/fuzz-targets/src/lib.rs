//! The bodies of Fovea's fuzz targets, one module per input format, so that the cargo-fuzz
//! crate in `fuzz/` (nightly, outside the workspace) and the ordinary test suite (which replays
//! every input in `fuzz/regressions/<target>/`) run the same code.
//!
//! Each target takes arbitrary bytes and must return without panicking, aborting, hanging or
//! allocating without bound; an `Err` from the parser is the right answer to a damaged input,
//! so the targets discard it.

pub mod checkpoint;
pub mod idx;
pub mod png_input;
pub mod regressions;
pub mod run_config;
pub mod seeds;

/// One fuzz target: its name (the `fuzz/fuzz_targets/<name>.rs` file and the corpus folder)
/// and what it runs on an input.
#[derive(Clone, Copy)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// Runs the target on one input.
    pub run: fn(&[u8]),
}

/// Every fuzz target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: [Target; 5] = [
    Target {
        name: "idx_raw",
        run: idx::raw,
    },
    Target {
        name: "idx_gzip",
        run: idx::gzip,
    },
    Target {
        name: "checkpoint",
        run: checkpoint::load,
    },
    Target {
        name: "png_input",
        run: png_input::decode,
    },
    Target {
        name: "run_config",
        run: run_config::parse,
    },
];
