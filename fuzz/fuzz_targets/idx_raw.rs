#![no_main]
//! Fuzz target `idx_raw`: see `fuzz_targets::idx::raw`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::idx::raw(data));
