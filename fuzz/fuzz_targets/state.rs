//! state.json parsing and checking on arbitrary bytes: a record or an error,
//! never a panic, and a record accepted only if its cgroup paths stay inside a
//! cgroup mount.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mounts = [PathBuf::from("/sys/fs/cgroup/pids"), PathBuf::from("/sys/fs/cgroup/unified")];
    if let Ok(rec) = berth::state::parse_record(data, "c1", &mounts) {
        for d in &rec.cgroup.dirs {
            assert!(mounts.iter().any(|m| d.path.starts_with(m) && d.path != *m));
            assert!(!d.path.components().any(|c| c == std::path::Component::ParentDir));
        }
    }
});
