//! libFuzzer entry for [`aisgate::fuzzing::kaas_soap`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aisgate::fuzzing::kaas_soap(data));
