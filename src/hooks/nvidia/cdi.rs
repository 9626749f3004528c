//! Container Device Interface: `generate` writes a spec (kind nvidia.com/gpu, a
//! device per GPU by index and by UUID, plus `all`) for a plan of every GPU, and
//! `apply` adds the edits of the named devices (`vendor/class=name`) found in
//! the spec directories to a config (as JSON): env, device nodes, mounts, hooks,
//! additional gids.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{NvidiaError, Plan};

pub const KIND: &str = "nvidia.com/gpu";
pub const SPEC_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceNode {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hook {
    pub hook_name: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Edits {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
    /// netDevices and intelRdt: accepted, not applied (berth has no use for
    /// them with GPUs); kept so valid specs load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_devices: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<Value>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Device {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    pub container_edits: Edits,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    pub cdi_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    pub devices: Vec<Device>,
    #[serde(default)]
    pub container_edits: Edits,
}

fn node(n: &super::Node, host: &Path) -> DeviceNode {
    DeviceNode {
        path: n.path.clone(),
        host_path: Some(host.display().to_string()),
        typ: Some("c".into()),
        major: Some(n.major as i64),
        minor: Some(n.minor as i64),
        file_mode: Some(0o666),
        permissions: Some("rwm".into()),
        ..Default::default()
    }
}

/// The `finish` hook's arguments for a plan: its links and ld cache entries.
pub fn finish_args(plan: &Plan) -> Vec<String> {
    let mut args = vec![
        "berth".to_string(),
        "hook".into(),
        "nvidia".into(),
        "finish".into(),
    ];
    for (link, target) in &plan.links {
        args.push("--link".into());
        args.push(format!("{target}::{link}"));
    }
    for (soname, path, is64) in &plan.cache {
        args.push(if *is64 { "--lib" } else { "--lib32" }.into());
        args.push(format!("{soname}::{path}"));
    }
    args
}

/// A CDI spec for `plan` (made for every GPU), with `berth` as the hook binary.
pub fn generate(plan: &Plan, berth: &Path) -> Spec {
    let control: Vec<DeviceNode> = plan
        .nodes
        .iter()
        .filter(|n| !plan.driver.gpu_nodes.values().any(|g| g == *n))
        .map(|n| node(n, &plan.driver.host(&n.path)))
        .collect();
    let mounts = plan
        .files
        .iter()
        .map(|f| Mount {
            host_path: f.host.display().to_string(),
            container_path: f.dest.clone(),
            options: ["ro", "nosuid", "nodev", "bind"].map(String::from).to_vec(),
            typ: None,
        })
        .collect();
    let gpu_edits = |minors: &[u32]| Edits {
        device_nodes: minors
            .iter()
            .filter_map(|m| plan.driver.gpu_nodes.get(m))
            .map(|n| node(n, &plan.driver.host(&n.path)))
            .collect(),
        ..Default::default()
    };
    let mut devices = Vec::new();
    for g in &plan.gpus {
        for name in [g.index.to_string(), g.uuid.clone()] {
            if !name.is_empty() {
                devices.push(Device {
                    name,
                    annotations: None,
                    container_edits: gpu_edits(&[g.minor]),
                });
            }
        }
    }
    let all: Vec<u32> = plan.gpus.iter().map(|g| g.minor).collect();
    devices.push(Device {
        name: "all".into(),
        annotations: None,
        container_edits: gpu_edits(&all),
    });
    Spec {
        cdi_version: "0.5.0".into(),
        kind: KIND.into(),
        annotations: None,
        devices,
        container_edits: Edits {
            // The devices come from this spec: create must not inject again.
            env: vec!["NVIDIA_VISIBLE_DEVICES=void".into()],
            device_nodes: control,
            mounts,
            hooks: vec![Hook {
                hook_name: "createContainer".into(),
                path: berth.display().to_string(),
                args: finish_args(plan),
                ..Default::default()
            }],
            ..Default::default()
        },
    }
}

/// Every spec in `dirs` (`*.json`; a malformed one is an error naming it).
fn load_specs(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, Spec)>, NvidiaError> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "yaml" || ext == "yml" {
                return Err(NvidiaError::Malformed {
                    path: f,
                    what: "YAML CDI specs are not supported; write JSON (berth gpu cdi generate)"
                        .into(),
                });
            }
            if ext != "json" {
                continue;
            }
            let raw = std::fs::read(&f).map_err(|source| NvidiaError::Read {
                path: f.clone(),
                source,
            })?;
            let spec: Spec = serde_json::from_slice(&raw).map_err(|e| NvidiaError::Malformed {
                path: f.clone(),
                what: e.to_string(),
            })?;
            out.push((f, spec));
        }
    }
    Ok(out)
}

/// The fully-qualified CDI device names a config's annotations request
/// (`cdi.k8s.io/<anything>`: comma-separated names).
pub fn annotated(annotations: Option<&std::collections::HashMap<String, String>>) -> Vec<String> {
    let mut keys: Vec<(&String, &String)> = annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("cdi.k8s.io/"))
        .collect();
    keys.sort();
    keys.into_iter()
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Adds the edits of `names` (`vendor/class=name`) to `config` (a config.json as
/// JSON). Spec-level edits are added once per spec used.
pub fn apply(config: &mut Value, names: &[String], dirs: &[PathBuf]) -> Result<(), NvidiaError> {
    if names.is_empty() {
        return Ok(());
    }
    let specs = load_specs(dirs)?;
    let mut used: Vec<usize> = Vec::new();
    let mut edits: Vec<Edits> = Vec::new();
    for name in names {
        let (kind, dev) = name.split_once('=').ok_or_else(|| NvidiaError::Request {
            var: "CDI device".into(),
            what: format!("{name:?} is not vendor.com/class=name"),
        })?;
        let found = specs.iter().enumerate().find_map(|(i, (_, s))| {
            (s.kind == kind)
                .then(|| s.devices.iter().find(|d| d.name == dev))
                .flatten()
                .map(|d| (i, d))
        });
        let (i, d) = found.ok_or_else(|| NvidiaError::Request {
            var: "CDI device".into(),
            what: format!(
                "unresolvable CDI device {name} (no spec in {} has it)",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        if !used.contains(&i) {
            used.push(i);
            edits.push(specs[i].1.container_edits.clone());
        }
        edits.push(d.container_edits.clone());
    }
    for e in &edits {
        edit(config, e)?;
    }
    Ok(())
}

fn push(config: &mut Value, path: &[&str], item: Value) {
    let mut at = config;
    for (i, key) in path.iter().enumerate() {
        if !at.get(*key).is_some_and(|v| v.is_object() || v.is_array()) {
            at[*key] = if i + 1 == path.len() {
                json!([])
            } else {
                json!({})
            };
        }
        at = &mut at[*key];
    }
    if let Some(a) = at.as_array_mut() {
        a.push(item);
    }
}

fn edit(config: &mut Value, e: &Edits) -> Result<(), NvidiaError> {
    for v in &e.env {
        push(config, &["process", "env"], json!(v));
    }
    for n in &e.device_nodes {
        let host = n.host_path.clone().unwrap_or_else(|| n.path.clone());
        let (typ, major, minor) = match (n.major, n.minor) {
            (Some(a), Some(b)) => (n.typ.clone().unwrap_or_else(|| "c".into()), a, b),
            _ => {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                let m = std::fs::metadata(&host).map_err(|source| NvidiaError::Read {
                    path: host.clone().into(),
                    source,
                })?;
                let t = if m.file_type().is_block_device() {
                    "b"
                } else {
                    "c"
                };
                (
                    t.to_string(),
                    nix::sys::stat::major(m.rdev()) as i64,
                    nix::sys::stat::minor(m.rdev()) as i64,
                )
            }
        };
        let typ = match typ.as_str() {
            "char" => "c".to_string(),
            "block" => "b".to_string(),
            t => t.to_string(),
        };
        let mut dev = json!({"path": n.path, "type": typ, "major": major, "minor": minor,
            "fileMode": n.file_mode.unwrap_or(0o666)});
        if let Some(u) = n.uid {
            dev["uid"] = json!(u);
        }
        if let Some(g) = n.gid {
            dev["gid"] = json!(g);
        }
        push(config, &["linux", "devices"], dev);
        push(
            config,
            &["linux", "resources", "devices"],
            json!({"allow": true, "type": typ, "major": major, "minor": minor,
                "access": n.permissions.clone().unwrap_or_else(|| "rwm".into())}),
        );
    }
    for m in &e.mounts {
        let mut mount = json!({"destination": m.container_path, "source": m.host_path,
            "options": m.options});
        mount["type"] = json!(m.typ.clone().unwrap_or_else(|| "bind".into()));
        push(config, &["mounts"], mount);
    }
    for h in &e.hooks {
        let names = [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ];
        if !names.contains(&h.hook_name.as_str()) {
            return Err(NvidiaError::Request {
                var: "CDI hook".into(),
                what: format!("unknown hookName {:?}", h.hook_name),
            });
        }
        let mut hook = json!({"path": h.path});
        if !h.args.is_empty() {
            hook["args"] = json!(h.args);
        }
        if !h.env.is_empty() {
            hook["env"] = json!(h.env);
        }
        if let Some(t) = h.timeout {
            hook["timeout"] = json!(t);
        }
        push(config, &["hooks", h.hook_name.as_str()], hook);
    }
    for g in e.additional_gids.iter().filter(|g| **g != 0) {
        push(config, &["process", "user", "additionalGids"], json!(g));
    }
    Ok(())
}
