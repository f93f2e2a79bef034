//! libFuzzer entry for [`aisgate::fuzzing::canonical_path`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aisgate::fuzzing::canonical_path(data));
