//! `berth hook nvidia STAGE` (also reached as `nvidia-container-runtime-hook
//! STAGE`): the NVIDIA prestart hook. It reads the container's state on stdin,
//! loads its config from the bundle, and injects the GPUs its env asks for into
//! the rootfs (in the container's mount namespace) and the device cgroup.
//! `finish` is CDI's createContainer hook: soname links and the ld cache.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cgroups::Layout;
use crate::cli::{HookCommand, HookStage};
use crate::config;
use crate::error::{Error, ResultExt};
use crate::hooks::nvidia::{self, driver_root, inject, plan_for, NvidiaError};

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
    allow_devices(pid, &plan)?;
    inject::enter_and_inject(&plan, pid, &bundle.rootfs)?;
    Ok(0)
}

/// Adds the injected nodes to the container's device cgroup (v1 devices.allow).
/// On a cgroup v2 host the eBPF device program cannot be extended from outside,
/// so the hook refuses rather than inject nodes nobody may open.
fn allow_devices(pid: i32, plan: &nvidia::Plan) -> Result<(), Error> {
    let layout = Layout::detect()?;
    let Some(h) = layout
        .v1
        .iter()
        .find(|h| h.controllers.iter().any(|c| c == "devices"))
    else {
        if layout.unified.is_some() {
            return Err(NvidiaError::Msg(
                "cgroup v2: the prestart hook cannot extend the container's device program; \
                 use berth as the runtime without the hook, or a CDI spec (berth gpu cdi generate)"
                    .into(),
            )
            .into());
        }
        return Ok(());
    };
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with(|| format!("read /proc/{pid}/cgroup"))?;
    let rel = text
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls
                .split(',')
                .any(|c| c == "devices")
                .then(|| path.to_string())
        })
        .ok_or_else(|| Error::msg(format!("pid {pid} has no devices cgroup")))?;
    let dir = h.mount.join(rel.trim_start_matches('/'));
    for rule in plan.device_rules() {
        let line = rule.v1_line();
        std::fs::write(dir.join("devices.allow"), &line)
            .with(|| format!("write {line:?} to {}", dir.join("devices.allow").display()))?;
    }
    Ok(())
}
