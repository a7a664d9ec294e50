//! Every input the fuzzers found (and the hand-made hostile ones) in `fuzz/regressions/<target>/`
//! goes through its target in the ordinary test suite: none may panic. An input that hung or
//! ran out of memory would hang or abort the test.

use fuzz_targets::{TARGETS, regressions};

fn replay(name: &str) {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    regressions::replay(target.name, target.run);
}

#[test]
fn idx_raw_survives_its_regression_inputs() {
    replay("idx_raw");
}

#[test]
fn idx_gzip_survives_its_regression_inputs() {
    replay("idx_gzip");
}

#[test]
fn checkpoint_survives_its_regression_inputs() {
    replay("checkpoint");
}

#[test]
fn png_input_survives_its_regression_inputs() {
    replay("png_input");
}

#[test]
fn run_config_survives_its_regression_inputs() {
    replay("run_config");
}

#[test]
fn every_target_has_a_fuzz_target_file_and_regression_inputs() {
    for target in TARGETS {
        let dir = regressions::regressions_dir(target.name);
        let file = dir
            .join("../../fuzz_targets")
            .join(format!("{}.rs", target.name));
        assert!(file.is_file(), "{} has no {}", target.name, file.display());
        assert!(dir.is_dir(), "{} has no {}", target.name, dir.display());
    }
}
