//! config.json parsing and validation on arbitrary bytes: every input must give
//! a spec or an error naming a field, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = berth::config::parse(data) {
        let _ = berth::config::validate::validate(&spec);
        let _ = berth::config::validate::rootfs(std::path::Path::new("/nonexistent-bundle"), &spec);
        let _ = berth::hooks::nvidia::request::from_env(&berth::hooks::nvidia::spec_env(&spec));
    }
});
