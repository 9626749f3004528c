//! Built-in NVIDIA GPU support: one implementation, reached as a drop-in
//! `nvidia-container-runtime-hook prestart`, from create itself when the process
//! env asks for GPUs, and through CDI specs. This module turns a driver
//! (`driver.rs`) and a request (`request.rs`) into a `Plan`: the device nodes,
//! files, links and ld cache entries to give the container, and the device rules
//! its cgroup needs. `inject.rs` carries a plan out inside the container's mount
//! namespace; `cdi.rs` writes and applies CDI specs.

pub mod cdi;
pub mod create;
pub mod driver;
pub mod inject;
pub mod ldcache;
pub mod request;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use driver::{Driver, Gpu, Node};
pub use request::Request;

use crate::cgroups::devices::Rule;

#[derive(Debug, thiserror::Error)]
pub enum NvidiaError {
    #[error("no NVIDIA driver under {root}: {why}")]
    NoDriver { root: PathBuf, why: String },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Malformed { path: PathBuf, what: String },
    #[error("{var}: {what}")]
    Request { var: String, what: String },
    #[error("{var}={expr} is not met by this host ({have})")]
    Unmet {
        var: String,
        expr: String,
        have: String,
    },
    #[error("{lib}: library version {found} differs from the kernel driver's {driver}")]
    LibVersion {
        lib: String,
        found: String,
        driver: String,
    },
    #[error("capability {cap} needs {lib}, which {root}/etc/ld.so.cache does not list")]
    MissingLib {
        cap: String,
        lib: String,
        root: PathBuf,
    },
    #[error("inject {what}: {errno}")]
    Inject {
        what: String,
        errno: nix::errno::Errno,
    },
    #[error("{0}")]
    Msg(String),
}

/// The driver root: `explicit` (--nvidia-root), else env BERTH_NVIDIA_ROOT, else
/// `root` of the NVIDIA container toolkit's own config (so hosts that had the
/// toolkit keep their setting), else `/`.
pub fn driver_root(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("BERTH_NVIDIA_ROOT").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    toolkit_root(Path::new(TOOLKIT_CONFIG)).unwrap_or_else(|| PathBuf::from("/"))
}

pub const TOOLKIT_CONFIG: &str = "/etc/nvidia-container-runtime/config.toml";

/// `root = "..."` in the `[nvidia-container-cli]` table of the toolkit's config.
fn toolkit_root(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: toml::Table = text.parse().ok()?;
    let root = doc.get("nvidia-container-cli")?.get("root")?.as_str()?;
    (!root.is_empty()).then(|| PathBuf::from(root))
}

/// Library sonames (without their version suffix) for each capability, as the
/// NVIDIA container toolkit groups them.
fn capability_libs(cap: &str) -> &'static [&'static str] {
    match cap {
        "utility" => &["libnvidia-ml.so", "libnvidia-cfg.so"],
        "compute" => &[
            "libcuda.so",
            "libcudadebugger.so",
            "libnvidia-opencl.so",
            "libnvidia-gpucomp.so",
            "libnvidia-ptxjitcompiler.so",
            "libnvidia-fatbinaryloader.so",
            "libnvidia-allocator.so",
            "libnvidia-compiler.so",
            "libnvidia-pkcs11.so",
            "libnvidia-pkcs11-openssl3.so",
            "libnvidia-nvvm.so",
        ],
        "video" => &[
            "libvdpau_nvidia.so",
            "libnvidia-encode.so",
            "libnvidia-opticalflow.so",
            "libnvcuvid.so",
        ],
        "graphics" => &[
            "libnvidia-eglcore.so",
            "libnvidia-glcore.so",
            "libnvidia-tls.so",
            "libnvidia-glsi.so",
            "libnvidia-fbc.so",
            "libnvidia-ifr.so",
            "libnvidia-rtcore.so",
            "libnvoptix.so",
            "libGLX_nvidia.so",
            "libEGL_nvidia.so",
            "libGLESv2_nvidia.so",
            "libGLESv1_CM_nvidia.so",
            "libnvidia-glvkspirv.so",
            "libnvidia-cbl.so",
        ],
        "ngx" => &["libnvidia-ngx.so"],
        _ => &[],
    }
}

/// Libraries a capability cannot work without.
fn required_lib(cap: &str) -> Option<&'static str> {
    match cap {
        "utility" => Some("libnvidia-ml.so"),
        "compute" => Some("libcuda.so"),
        _ => None,
    }
}

fn capability_bins(cap: &str) -> &'static [&'static str] {
    match cap {
        "utility" => &["nvidia-smi", "nvidia-debugdump", "nvidia-persistenced"],
        "compute" => &["nvidia-cuda-mps-control", "nvidia-cuda-mps-server"],
        _ => &[],
    }
}

const BIN_DIRS: &[&str] = &["usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin"];

/// A host file (under the driver root) given to the container at `dest`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct File {
    pub host: PathBuf,
    pub dest: String,
}

/// Everything one container gets.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    pub driver: Driver,
    pub gpus: Vec<Gpu>,
    pub nodes: Vec<Node>,
    pub files: Vec<File>,
    /// (link path, target) symlinks, e.g. libcuda.so.1 → libcuda.so.535.104.05.
    pub links: Vec<(String, String)>,
    /// soname and path (inside the container) for its ld cache, and whether the
    /// library is 64-bit.
    pub cache: Vec<(String, String, bool)>,
    /// Whether /proc/driver/nvidia is replaced by a tmpfs holding params (with
    /// ModifyDeviceFiles: 0), version and registry.
    pub proc_files: bool,
}

/// The real file behind `path` inside the driver root, as a path in the root.
fn real_in_root(driver: &Driver, path: &str) -> Option<String> {
    let real = std::fs::canonicalize(driver.host(path)).ok()?;
    let root = std::fs::canonicalize(&driver.root).ok()?;
    let rel = real.strip_prefix(&root).ok()?;
    Some(format!("/{}", rel.display()))
}

impl Plan {
    /// The plan for `request` on `driver`.
    pub fn new(driver: Driver, request: &Request) -> Result<Plan, NvidiaError> {
        request.check(&driver)?;
        let gpus: Vec<Gpu> = request.select(&driver)?.into_iter().cloned().collect();
        let caps = &request.capabilities;
        let mut nodes: Vec<Node> = Vec::new();
        for n in &driver.control {
            let wanted = match n.path.as_str() {
                "/dev/nvidiactl" => true,
                "/dev/nvidia-uvm" | "/dev/nvidia-uvm-tools" => caps.contains("compute"),
                "/dev/nvidia-modeset" => caps.contains("display"),
                _ => false,
            };
            if wanted {
                nodes.push(n.clone());
            }
        }
        for g in &gpus {
            if let Some(n) = driver.gpu_nodes.get(&g.minor) {
                nodes.push(n.clone());
            }
        }
        let mut plan = Plan {
            gpus,
            nodes,
            files: Vec::new(),
            links: Vec::new(),
            cache: Vec::new(),
            proc_files: !caps.is_empty(),
            driver,
        };
        let compat32 = caps.contains("compat32");
        for cap in caps {
            for prefix in capability_libs(cap) {
                let found = plan.add_libs(prefix, false)?;
                if !found && required_lib(cap) == Some(prefix) {
                    return Err(NvidiaError::MissingLib {
                        cap: cap.clone(),
                        lib: prefix.to_string(),
                        root: plan.driver.root.clone(),
                    });
                }
                if compat32 {
                    plan.add_libs(prefix, true)?;
                }
            }
            for bin in capability_bins(cap) {
                if let Some(dir) = BIN_DIRS
                    .iter()
                    .find(|d| plan.driver.host(&format!("{d}/{bin}")).is_file())
                {
                    plan.files.push(File {
                        host: plan.driver.host(&format!("{dir}/{bin}")),
                        dest: format!("/usr/bin/{bin}"),
                    });
                }
            }
        }
        if caps.contains("utility") || caps.contains("compute") {
            plan.add_firmware_and_sockets();
        }
        Ok(plan)
    }

    /// Adds every library whose soname starts with `prefix.`; false if none.
    fn add_libs(&mut self, prefix: &str, lib32: bool) -> Result<bool, NvidiaError> {
        let map = if lib32 {
            &self.driver.libs32
        } else {
            &self.driver.libs
        };
        let hits: Vec<(String, String)> = map
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{prefix}.")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (soname, path) in &hits {
            let Some(real) = real_in_root(&self.driver, path) else {
                continue;
            };
            let file_name = real.rsplit('/').next().unwrap_or_default().to_string();
            let suffix = format!(".so.{}", self.driver.version);
            if !file_name.ends_with(&suffix) {
                let found = file_name
                    .split_once(".so.")
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_else(|| "(none)".into());
                return Err(NvidiaError::LibVersion {
                    lib: self.driver.host(&real).display().to_string(),
                    found,
                    driver: self.driver.version.clone(),
                });
            }
            let dir = real.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            if !self.files.iter().any(|f| f.dest == real) {
                self.files.push(File {
                    host: self.driver.host(&real),
                    dest: real.clone(),
                });
            }
            let link = format!("{dir}/{soname}");
            if link != real {
                self.links.push((link.clone(), file_name.clone()));
            }
            self.cache.push((soname.clone(), link, !lib32));
            // The development name engines and toolkits link against.
            if *prefix == *"libcuda.so" || *prefix == *"libnvidia-ml.so" {
                let dev = format!("{dir}/{prefix}");
                if !self.links.iter().any(|(l, _)| *l == dev) {
                    self.links.push((dev, soname.clone()));
                }
            }
        }
        Ok(!hits.is_empty())
    }

    fn add_firmware_and_sockets(&mut self) {
        let fw_dir = format!("/lib/firmware/nvidia/{}", self.driver.version);
        if let Ok(rd) = std::fs::read_dir(self.driver.host(&fw_dir)) {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".bin"))
                .collect();
            names.sort();
            for n in names {
                self.files.push(File {
                    host: self.driver.host(&format!("{fw_dir}/{n}")),
                    dest: format!("{fw_dir}/{n}"),
                });
            }
        }
        for s in ["/run/nvidia-persistenced/socket", "/tmp/nvidia-mps"] {
            if self.driver.host(s).exists() {
                self.files.push(File {
                    host: self.driver.host(s),
                    dest: s.to_string(),
                });
            }
        }
    }

    /// The device cgroup rules for the injected nodes.
    pub fn device_rules(&self) -> Vec<Rule> {
        self.nodes
            .iter()
            .map(|n| Rule::allow('c', n.major as i64, Some(n.minor as i64), "rwm"))
            .collect()
    }
}

/// Whether the config already has the toolkit's (or berth's) prestart hook.
pub fn has_hook(spec: &Spec) -> bool {
    let hooks = spec.hooks().as_ref();
    let lists = hooks
        .into_iter()
        .flat_map(|h| [h.prestart(), h.create_runtime()])
        .flatten()
        .flatten();
    lists.into_iter().any(|h| {
        let path = h.path().to_string_lossy();
        let args = h.args().clone().unwrap_or_default();
        path.ends_with("nvidia-container-runtime-hook")
            || path.ends_with("nvidia-container-toolkit")
            || args.windows(2).any(|w| w[0] == "hook" && w[1] == "nvidia")
    })
}

/// The process env of a spec.
pub fn spec_env(spec: &Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default()
}

/// The plan for a container config, or None when it asks for no GPU.
pub fn plan_for(spec: &Spec, root: &Path) -> Result<Option<Plan>, NvidiaError> {
    let Some(request) = request::from_env(&spec_env(spec))? else {
        return Ok(None);
    };
    let driver = Driver::discover(root)?;
    Plan::new(driver, &request).map(Some)
}
