//! libFuzzer entry for [`aisgate::fuzzing::cookies`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aisgate::fuzzing::cookies(data));
