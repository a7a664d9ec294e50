#![no_main]
//! Fuzz target `run_config`: see `fuzz_targets::run_config::parse`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::run_config::parse(data));
