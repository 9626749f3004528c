//! glibc's /etc/ld.so.cache: read (the new format, alone or after the old one) to
//! find a driver's libraries by soname, and written to add the injected libraries
//! to a container's cache, so its loader and `ldconfig -p` find them.

use std::cmp::Ordering;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const HEADER: usize = 48;
const ENTRY: usize = 24;
/// FLAG_ELF_LIBC6 | FLAG_X8664_LIB64.
pub const FLAGS_X86_64: i32 = 0x0303;
/// FLAG_ELF_LIBC6 (32-bit x86).
pub const FLAGS_I386: i32 = 0x0003;
const ENDIAN_LITTLE: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub flags: i32,
    /// soname (`libcuda.so.1`).
    pub key: String,
    /// path of the library (`/usr/lib/x86_64-linux-gnu/libcuda.so.1`).
    pub value: String,
    pub hwcap: u64,
}

impl Entry {
    pub fn is_64bit(&self) -> bool {
        self.flags & 0xff00 != 0
    }
}

fn u32_at(raw: &[u8], at: usize) -> Result<u32, String> {
    raw.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| format!("truncated at byte {at}"))
}

fn str_at(raw: &[u8], at: usize) -> Result<String, String> {
    let rest = raw
        .get(at..)
        .ok_or_else(|| format!("string offset {at} out of range"))?;
    let end = rest
        .iter()
        .position(|b| *b == 0)
        .ok_or("unterminated string")?;
    String::from_utf8(rest[..end].to_vec()).map_err(|_| "string is not UTF-8".to_string())
}

/// The entries of a cache file.
pub fn parse(raw: &[u8]) -> Result<Vec<Entry>, String> {
    let mut start = 0;
    if raw.starts_with(OLD_MAGIC) {
        let n = u32_at(raw, OLD_MAGIC.len())? as usize;
        start = (OLD_MAGIC.len() + 4 + n.checked_mul(12).ok_or("bad count")?).next_multiple_of(8);
    }
    let new = raw.get(start..).ok_or("no new-format cache")?;
    if !new.starts_with(NEW_MAGIC) {
        return Err("not a glibc ld.so.cache (new format)".into());
    }
    let n = u32_at(new, 20)? as usize;
    let mut out = Vec::with_capacity(n.min(65536));
    for i in 0..n {
        let at = HEADER + i * ENTRY;
        let flags = u32_at(new, at)? as i32;
        let key = str_at(new, u32_at(new, at + 4)? as usize)?;
        let value = str_at(new, u32_at(new, at + 8)? as usize)?;
        let hwcap = u64::from(u32_at(new, at + 16)?) | (u64::from(u32_at(new, at + 20)?) << 32);
        out.push(Entry {
            flags,
            key,
            value,
            hwcap,
        });
    }
    Ok(out)
}

/// glibc's `_dl_cache_libcmp`: runs of digits compare as numbers. The loader
/// binary-searches the cache in this order, so the writer must sort by it.
pub fn libcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i].is_ascii_digit() {
            if j < b.len() && b[j].is_ascii_digit() {
                let (mut x, mut y) = (0u64, 0u64);
                while i < a.len() && a[i].is_ascii_digit() {
                    x = x.saturating_mul(10).saturating_add(u64::from(a[i] - b'0'));
                    i += 1;
                }
                while j < b.len() && b[j].is_ascii_digit() {
                    y = y.saturating_mul(10).saturating_add(u64::from(b[j] - b'0'));
                    j += 1;
                }
                if x != y {
                    return x.cmp(&y);
                }
            } else {
                return Ordering::Greater;
            }
        } else if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        } else if j >= b.len() || a[i] != b[j] {
            return a[i].cmp(b.get(j).unwrap_or(&0));
        } else {
            i += 1;
            j += 1;
        }
    }
    0u8.cmp(b.get(j).unwrap_or(&0))
}

/// A new-format cache holding `entries` (one per key and flags; later ones win),
/// in ldconfig's order.
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let mut list: Vec<&Entry> = Vec::new();
    for e in entries {
        list.retain(|x| !(x.key == e.key && x.flags == e.flags));
        list.push(e);
    }
    // ldconfig: descending by libcmp of the key, then by flags and hwcap.
    list.sort_by(|x, y| {
        libcmp(&y.key, &x.key)
            .then(y.flags.cmp(&x.flags))
            .then(y.hwcap.cmp(&x.hwcap))
    });
    let strings_at = HEADER + list.len() * ENTRY;
    let mut strings: Vec<u8> = Vec::new();
    let mut table = Vec::with_capacity(list.len() * ENTRY);
    for e in &list {
        let key = (strings_at + strings.len()) as u32;
        strings.extend_from_slice(e.key.as_bytes());
        strings.push(0);
        let value = (strings_at + strings.len()) as u32;
        strings.extend_from_slice(e.value.as_bytes());
        strings.push(0);
        table.extend_from_slice(&e.flags.to_le_bytes());
        table.extend_from_slice(&key.to_le_bytes());
        table.extend_from_slice(&value.to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&e.hwcap.to_le_bytes());
    }
    let mut out = Vec::with_capacity(strings_at + strings.len());
    out.extend_from_slice(NEW_MAGIC);
    out.extend_from_slice(&(list.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.push(ENDIAN_LITTLE);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&0u32.to_le_bytes()); // no extensions
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&table);
    out.extend_from_slice(&strings);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, value: &str) -> Entry {
        Entry {
            flags: FLAGS_X86_64,
            key: key.into(),
            value: value.into(),
            hwcap: 0,
        }
    }

    #[test]
    fn written_cache_reads_back_sorted() {
        let raw = write(&[
            e("libcuda.so.1", "/usr/lib/libcuda.so.1"),
            e("libc.so.6", "/lib/libc.so.6"),
            e("libnvidia-ml.so.1", "/usr/lib/libnvidia-ml.so.1"),
            e("libcuda.so.1", "/usr/lib64/libcuda.so.1"),
        ]);
        let back = parse(&raw).unwrap();
        let keys: Vec<&str> = back.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["libnvidia-ml.so.1", "libcuda.so.1", "libc.so.6"]);
        assert_eq!(back[1].value, "/usr/lib64/libcuda.so.1");
    }

    #[test]
    fn libcmp_compares_numbers_as_numbers() {
        assert_eq!(libcmp("libx.so.10", "libx.so.9"), Ordering::Greater);
        assert_eq!(libcmp("libx.so.1", "libx.so.1"), Ordering::Equal);
        assert_eq!(libcmp("liba.so", "libb.so"), Ordering::Less);
        assert_eq!(libcmp("libx.so", "libx.so.1"), Ordering::Less);
    }

    #[test]
    fn the_hosts_own_cache_parses() {
        if let Ok(raw) = std::fs::read("/etc/ld.so.cache") {
            let entries = parse(&raw).unwrap();
            assert!(entries.iter().any(|e| e.key == "libc.so.6"));
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(b"nonsense").is_err());
        let mut raw = write(&[e("liba.so.1", "/a")]);
        raw.truncate(50);
        assert!(parse(&raw).is_err());
    }
}
