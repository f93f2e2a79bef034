//! libFuzzer entry for [`aisgate::fuzzing::oidc_jws`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aisgate::fuzzing::oidc_jws(data));
