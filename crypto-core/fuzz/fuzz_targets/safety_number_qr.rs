#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = crypto_core::fuzzing::safety_number_qr(data) {
        panic!("{e}")
    }
});
