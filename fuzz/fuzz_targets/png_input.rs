#![no_main]
//! Fuzz target `png_input`: see `fuzz_targets::png_input::decode`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::png_input::decode(data));
