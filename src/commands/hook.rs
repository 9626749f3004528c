//! `berth hook nvidia STAGE` (also reached as `nvidia-container-runtime-hook
//! STAGE`): the NVIDIA prestart hook. It reads the container's state on stdin,
//! loads its config from the bundle, and injects the GPUs its env asks for into
//! the rootfs (in the container's mount namespace) and the device cgroup.
//! `finish` is CDI's createContainer hook: soname links and the ld cache.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cgroups::{devices, Layout};
use crate::cli::{HookCommand, HookStage};
use crate::config;
use crate::error::{Error, ResultExt};
use crate::hooks::nvidia::{self, driver_root, inject, plan_for};

pub fn run(cmd: &HookCommand) -> Result<i32, Error> {
    let HookCommand::Nvidia {
        stage,
        nvidia_root,
        links,
        libs,
        libs32,
    } = cmd;
    match stage {
        HookStage::Poststart | HookStage::Poststop => Ok(0),
        HookStage::Prestart => prestart(nvidia_root.as_deref()),
        HookStage::Finish => {
            let (_, bundle) = read_state()?;
            let bundle = config::load(&bundle)?;
            let pairs = |list: &[String], flag: &str| -> Result<Vec<(String, String)>, Error> {
                list.iter()
                    .map(|s| {
                        s.split_once("::")
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .ok_or_else(|| Error::msg(format!("{flag} {s:?}: expected A::B")))
                    })
                    .collect()
            };
            let links: Vec<(String, String)> = pairs(links, "--link")?
                .into_iter()
                .map(|(target, link)| (link, target))
                .collect();
            let mut cache: Vec<(String, String, bool)> = Vec::new();
            for (s, p) in pairs(libs, "--lib")? {
                cache.push((s, p, true));
            }
            for (s, p) in pairs(libs32, "--lib32")? {
                cache.push((s, p, false));
            }
            inject::finish_rootfs(&bundle.rootfs, &links, &cache)?;
            Ok(0)
        }
    }
}

/// The container's pid and bundle from the state on stdin.
fn read_state() -> Result<(i32, PathBuf), Error> {
    let mut raw = String::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut raw)
        .with(|| "read the container state from stdin".into())?;
    let v: serde_json::Value = serde_json::from_str(&raw)
        .map_err(|e| Error::msg(format!("container state on stdin: {e}")))?;
    let pid = v["pid"]
        .as_i64()
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::msg("container state on stdin: no pid"))?;
    let bundle = v["bundle"]
        .as_str()
        .ok_or_else(|| Error::msg("container state on stdin: no bundle"))?;
    Ok((pid as i32, PathBuf::from(bundle)))
}

fn prestart(root: Option<&Path>) -> Result<i32, Error> {
    let (pid, bundle) = read_state()?;
    let bundle = config::load(&bundle)?;
    let Some(plan) = plan_for(&bundle.spec, &driver_root(root))? else {
        return Ok(0);
    };
    allow_devices(pid, &bundle.spec, &plan)?;
    inject::enter_and_inject(&plan, pid, &bundle.rootfs)?;
    Ok(0)
}

/// Adds the injected nodes to the container's device cgroup: v1 rules in
/// devices.allow; on cgroup v2, a new eBPF program with the config's rules
/// (resources, default devices, linux.devices) and the GPU nodes replaces the
/// one the runtime attached.
fn allow_devices(
    pid: i32,
    spec: &oci_spec::runtime::Spec,
    plan: &nvidia::Plan,
) -> Result<(), Error> {
    let layout = Layout::detect()?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with(|| format!("read /proc/{pid}/cgroup"))?;
    // (hierarchy id, controllers, path) per line.
    let member = |want: &dyn Fn(&str, &str) -> bool| {
        text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            want(id, ctrls).then(|| path.trim_start_matches('/').to_string())
        })
    };
    if let Some(h) = layout
        .v1
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "devices"))
    {
        let rel = member(&|_, c| c.split(',').any(|c| c == "devices"))
            .ok_or_else(|| Error::msg(format!("pid {pid} has no devices cgroup")))?;
        let file = h.mount.join(rel).join("devices.allow");
        for rule in plan.device_rules() {
            let line = rule.v1_line();
            std::fs::write(&file, &line)
                .with(|| format!("write {line:?} to {}", file.display()))?;
        }
        return Ok(());
    }
    let Some(unified) = &layout.unified else {
        return Ok(());
    };
    let rel = member(&|id, _| id == "0")
        .ok_or_else(|| Error::msg(format!("pid {pid} has no cgroup2 membership")))?;
    let linux = spec.linux().as_ref();
    let mut extra = devices::node_rules(linux);
    extra.extend(plan.device_rules());
    let rules = devices::rules(linux.and_then(|l| l.resources().as_ref()), &extra)?;
    devices::replace(&unified.mount.join(rel), &devices::program(&rules))?;
    Ok(())
}
