//! libFuzzer entry for [`aisgate::fuzzing::saml_acs`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aisgate::fuzzing::saml_acs(data));
