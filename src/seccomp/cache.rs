//! A cache of compiled filters under `--root/@seccomp` ('@' is never in an id).
//! Compiling a large profile is the dearest step of create; a profile seen before
//! costs one file read. Each entry holds the exact profile bytes it was made from
//! and is used only when they match, so a hash collision can never load the wrong
//! filter. Writes are atomic (rename); a cache that cannot be written is skipped.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// What invalidates an entry besides the profile: berth's and libseccomp's versions.
fn entry_path(dir: &Path, key: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    let v = libseccomp::ScmpVersion::current()
        .map(|v| (v.major, v.minor, v.micro))
        .unwrap_or_default();
    v.hash(&mut h);
    dir.join(format!("{:016x}.bpf", h.finish()))
}

/// The BPF stored for exactly this profile, if any.
pub fn get(dir: &Path, key: &[u8]) -> Option<Vec<u8>> {
    let data = std::fs::read(entry_path(dir, key)).ok()?;
    let len = u64::from_le_bytes(data.get(..8)?.try_into().ok()?) as usize;
    let stored = data.get(8..8usize.checked_add(len)?)?;
    if stored != key {
        return None;
    }
    let bpf = data.get(8 + len..)?;
    (!bpf.is_empty() && bpf.len() % 8 == 0).then(|| bpf.to_vec())
}

/// Stores the BPF for this profile; failures are ignored (the cache is optional).
pub fn put(dir: &Path, key: &[u8], bpf: &[u8]) {
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_err()
    {
        return;
    }
    let path = entry_path(dir, key);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&(key.len() as u64).to_le_bytes())?;
        f.write_all(key)?;
        f.write_all(bpf)
    });
    if written.and_then(|()| std::fs::rename(&tmp, &path)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_only_for_the_same_profile() {
        let dir = std::env::temp_dir().join(format!("berth-bpf-cache-{}", std::process::id()));
        assert_eq!(get(&dir, b"profile-a"), None);
        put(&dir, b"profile-a", &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(get(&dir, b"profile-a"), Some(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(get(&dir, b"profile-b"), None);
        // A corrupt entry is a miss, not a filter.
        std::fs::write(entry_path(&dir, b"profile-a"), b"junk").unwrap();
        assert_eq!(get(&dir, b"profile-a"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
