//! Discovery of an NVIDIA driver under a driver root: its version (from
//! /proc/driver/nvidia/version), the CUDA version it supports, its GPUs (from
//! /proc/driver/nvidia/gpus/*/information), device nodes, libraries (through the
//! root's ld.so.cache), binaries, firmware and sockets. Read-only: nothing here
//! changes the host.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::ldcache;
use super::NvidiaError;

/// One GPU as the driver lists it; `index` is its place in bus-id order, as
/// nvidia-smi numbers them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Gpu {
    pub index: usize,
    pub minor: u32,
    pub uuid: String,
    pub bus_id: String,
    pub model: String,
}

/// A character device node on the host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    /// Path as the container sees it (`/dev/nvidia0`).
    pub path: String,
    pub major: u64,
    pub minor: u64,
}

/// What a driver root holds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Driver {
    pub root: PathBuf,
    pub version: String,
    /// (major, minor) of the newest CUDA this driver runs.
    pub cuda: (u32, u32),
    pub gpus: Vec<Gpu>,
    /// nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset when present.
    pub control: Vec<Node>,
    /// The GPU nodes, by minor.
    pub gpu_nodes: BTreeMap<u32, Node>,
    /// soname → library path (inside the root) for the 64-bit libraries of the
    /// root's ld.so.cache, and for the 32-bit ones separately.
    pub libs: BTreeMap<String, String>,
    pub libs32: BTreeMap<String, String>,
}

/// The kernel driver's version as the first version-shaped word after "Module" in
/// /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX x86_64 Kernel Module
/// 535.104.05 ..." or "... Open Kernel Module for x86_64  535.104.05 ...").
pub fn parse_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let after = line.split_once("Module")?.1;
    after
        .split_whitespace()
        .find(|w| {
            w.split('.').count() >= 2
                && w.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// The newest CUDA a driver branch runs, from NVIDIA's published table of minimum
/// driver versions (CUDA Toolkit release notes, "CUDA Toolkit and Corresponding
/// Driver Versions"): the driver's own cuDriverGetVersion would need its
/// libcuda loaded into berth, which berth never does.
pub fn cuda_for(version: &str) -> (u32, u32) {
    /// (minimum driver version, CUDA version).
    type Row = ((u32, u32, u32), (u32, u32));
    const TABLE: &[Row] = &[
        ((580, 65, 6), (13, 0)),
        ((575, 51, 3), (12, 9)),
        ((570, 26, 0), (12, 8)),
        ((560, 28, 3), (12, 6)),
        ((555, 42, 2), (12, 5)),
        ((550, 54, 14), (12, 4)),
        ((545, 23, 6), (12, 3)),
        ((535, 54, 3), (12, 2)),
        ((530, 30, 2), (12, 1)),
        ((525, 60, 13), (12, 0)),
        ((520, 61, 5), (11, 8)),
        ((515, 43, 4), (11, 7)),
        ((510, 39, 1), (11, 6)),
        ((495, 29, 5), (11, 5)),
        ((470, 42, 1), (11, 4)),
        ((465, 19, 1), (11, 3)),
        ((460, 27, 3), (11, 2)),
        ((455, 23, 0), (11, 1)),
        ((450, 36, 6), (11, 0)),
        ((440, 33, 1), (10, 2)),
        ((418, 39, 0), (10, 1)),
        ((410, 48, 0), (10, 0)),
    ];
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    TABLE
        .iter()
        .find(|(min, _)| v >= *min)
        .map(|(_, cuda)| *cuda)
        .unwrap_or((9, 0))
}

/// One `Key: value` field of a gpus/<bus>/information file.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn node(root: &Path, name: &str) -> Option<Node> {
    let meta = std::fs::metadata(root.join("dev").join(name)).ok()?;
    meta.file_type().is_char_device().then(|| Node {
        path: format!("/dev/{name}"),
        major: nix::sys::stat::major(meta.rdev()),
        minor: nix::sys::stat::minor(meta.rdev()),
    })
}

impl Driver {
    /// Discovers the driver under `root`; fails when there is none.
    pub fn discover(root: &Path) -> Result<Driver, NvidiaError> {
        let version_file = root.join("proc/driver/nvidia/version");
        let text = std::fs::read_to_string(&version_file).map_err(|e| NvidiaError::NoDriver {
            root: root.to_path_buf(),
            why: format!("{}: {e}", version_file.display()),
        })?;
        let version = parse_version(&text).ok_or_else(|| NvidiaError::NoDriver {
            root: root.to_path_buf(),
            why: format!("{}: no NVRM version line", version_file.display()),
        })?;
        let mut gpus = Vec::new();
        let gpus_dir = root.join("proc/driver/nvidia/gpus");
        let mut buses: Vec<PathBuf> = match std::fs::read_dir(&gpus_dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => Vec::new(),
        };
        buses.sort();
        for dir in buses {
            let info_path = dir.join("information");
            let info = std::fs::read_to_string(&info_path).map_err(|e| NvidiaError::Read {
                path: info_path.clone(),
                source: e,
            })?;
            let minor = field(&info, "Device Minor")
                .and_then(|m| m.parse().ok())
                .ok_or_else(|| NvidiaError::Malformed {
                    path: info_path.clone(),
                    what: "no Device Minor".into(),
                })?;
            gpus.push(Gpu {
                index: gpus.len(),
                minor,
                uuid: field(&info, "GPU UUID").unwrap_or_default().to_string(),
                bus_id: field(&info, "Bus Location")
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        dir.file_name().unwrap_or_default().to_string_lossy().into()
                    }),
                model: field(&info, "Model").unwrap_or_default().to_string(),
            });
        }
        let ctl = node(root, "nvidiactl").ok_or_else(|| NvidiaError::NoDriver {
            root: root.to_path_buf(),
            why: format!(
                "{} is not a character device",
                root.join("dev/nvidiactl").display()
            ),
        })?;
        let mut control = vec![ctl];
        control.extend(
            ["nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"]
                .iter()
                .filter_map(|n| node(root, n)),
        );
        let mut gpu_nodes = BTreeMap::new();
        for g in &gpus {
            let n =
                node(root, &format!("nvidia{}", g.minor)).ok_or_else(|| NvidiaError::NoDriver {
                    root: root.to_path_buf(),
                    why: format!("GPU {} has no device node /dev/nvidia{}", g.bus_id, g.minor),
                })?;
            gpu_nodes.insert(g.minor, n);
        }
        let cache_path = root.join("etc/ld.so.cache");
        let cache = match std::fs::read(&cache_path) {
            Ok(raw) => ldcache::parse(&raw).map_err(|what| NvidiaError::Malformed {
                path: cache_path.clone(),
                what,
            })?,
            Err(_) => Vec::new(),
        };
        let mut libs = BTreeMap::new();
        let mut libs32 = BTreeMap::new();
        for e in cache {
            let map = if e.is_64bit() { &mut libs } else { &mut libs32 };
            map.entry(e.key).or_insert(e.value);
        }
        Ok(Driver {
            root: root.to_path_buf(),
            cuda: cuda_for(&version),
            version,
            gpus,
            control,
            gpu_nodes,
            libs,
            libs32,
        })
    }

    /// `path` (as on the host) under the driver root.
    pub fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_both_kernel_modules() {
        let closed = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version:  gcc 12\n";
        assert_eq!(parse_version(closed).as_deref(), Some("535.104.05"));
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\n";
        assert_eq!(parse_version(open).as_deref(), Some("550.54.14"));
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn cuda_from_the_driver_table() {
        assert_eq!(cuda_for("535.104.05"), (12, 2));
        assert_eq!(cuda_for("535.54.03"), (12, 2));
        assert_eq!(cuda_for("535.54.02"), (12, 1));
        assert_eq!(cuda_for("470.82.01"), (11, 4));
        assert_eq!(cuda_for("580.95.05"), (13, 0));
    }

    #[test]
    fn information_fields() {
        let info = "Model: \t\t Tesla T4\nGPU UUID: \t GPU-1234\nBus Location: \t 0000:00:1e.0\nDevice Minor: \t 3\n";
        assert_eq!(field(info, "Device Minor"), Some("3"));
        assert_eq!(field(info, "Model"), Some("Tesla T4"));
        assert_eq!(field(info, "Bus Location"), Some("0000:00:1e.0"));
    }
}
