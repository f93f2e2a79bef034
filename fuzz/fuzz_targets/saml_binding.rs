//! libFuzzer entry for [`aisgate::fuzzing::saml_binding`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aisgate::fuzzing::saml_binding(data));
