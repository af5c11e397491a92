#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = crypto_core::fuzzing::attachment_decrypt(data) {
        panic!("{e}")
    }
});
