//! libFuzzer entry for [`aisgate::fuzzing::return_url`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aisgate::fuzzing::return_url(data));
