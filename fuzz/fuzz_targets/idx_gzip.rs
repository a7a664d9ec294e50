#![no_main]
//! Fuzz target `idx_gzip`: see `fuzz_targets::idx::gzip`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::idx::gzip(data));
