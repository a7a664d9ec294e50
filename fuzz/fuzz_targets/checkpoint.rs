#![no_main]
//! Fuzz target `checkpoint`: see `fuzz_targets::checkpoint::load`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::checkpoint::load(data));
