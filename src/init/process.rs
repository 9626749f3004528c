//! The user process's own attributes, applied by init just before it waits for
//! start: oomScoreAdj, personality, scheduler, ioPriority, rlimits, the LSM labels,
//! noNewPrivileges, then the switch to the container user with its five capability
//! sets, the umask and the cwd.

use std::collections::HashSet;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{LinuxCapabilities, Process};

use super::{Context, InitError};

/// Applies every attribute, privileged ones first.
pub fn apply(spec: &oci_spec::runtime::Spec, p: &Process) -> Result<(), InitError> {
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| format!("process.oomScoreAdj {adj}"))?;
    }
    set_personality(spec)?;
    scheduler(p)?;
    io_priority(p)?;
    rlimits(p)?;
    lsm(p)?;
    if p.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().ctx(|| "process.noNewPrivileges".into())?;
    }
    user_and_caps(p)?;
    let umask = p.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    nix::unistd::chdir(p.cwd()).ctx(|| format!("process.cwd {}", p.cwd().display()))
}

/// linux.personality: LINUX or LINUX32.
fn set_personality(spec: &oci_spec::runtime::Spec) -> Result<(), InitError> {
    let Some(pers) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(());
    };
    let domain = serde_json::to_value(pers.domain()).ok();
    let value = match domain.as_ref().and_then(|v| v.as_str()) {
        Some("LINUX") => 0x0000,
        Some("LINUX32") => 0x0008,
        other => {
            return Err(InitError::Config(format!(
                "linux.personality.domain: unknown domain {other:?}"
            )))
        }
    };
    // SAFETY: personality only changes this process's execution domain.
    let ret = unsafe { libc::personality(value) };
    nix::errno::Errno::result(ret)
        .ctx(|| "linux.personality".into())
        .map(drop)
}

/// Serde's spelling of an oci-spec enum value ("SCHED_FIFO", "RLIMIT_NOFILE", ...).
fn spelled<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `struct sched_attr` of sched_setattr(2).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn scheduler(p: &Process) -> Result<(), InitError> {
    let Some(s) = p.scheduler() else {
        return Ok(());
    };
    let policy = match spelled(s.policy()).as_str() {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        other => {
            return Err(InitError::Config(format!(
                "process.scheduler.policy: unknown policy {other:?}"
            )))
        }
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match spelled(f).as_str() {
            "SCHED_FLAG_RESET_ON_FORK" => 0x01,
            "SCHED_FLAG_RECLAIM" => 0x02,
            "SCHED_FLAG_DL_OVERRUN" => 0x04,
            "SCHED_FLAG_KEEP_POLICY" => 0x08,
            "SCHED_FLAG_KEEP_PARAMS" => 0x10,
            "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
            "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
            other => {
                return Err(InitError::Config(format!(
                    "process.scheduler.flags: unknown flag {other:?}"
                )))
            }
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: attr is a valid sched_attr of the size it declares; pid 0 is this thread.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    nix::errno::Errno::result(ret)
        .ctx(|| "process.scheduler".into())
        .map(drop)
}

fn io_priority(p: &Process) -> Result<(), InitError> {
    let Some(io) = p.io_priority() else {
        return Ok(());
    };
    let class: i64 = match spelled(&io.class()).as_str() {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        other => {
            return Err(InitError::Config(format!(
                "process.ioPriority.class: unknown class {other:?}"
            )))
        }
    };
    if !(0..8).contains(&io.priority()) {
        return Err(InitError::Config(format!(
            "process.ioPriority.priority: {} is outside 0..7",
            io.priority()
        )));
    }
    let value = (class << 13) | io.priority();
    // SAFETY: ioprio_set with IOPRIO_WHO_PROCESS (1) and who 0 targets this process.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) };
    nix::errno::Errno::result(ret)
        .ctx(|| "process.ioPriority".into())
        .map(drop)
}

/// The libc resource of an OCI rlimit name.
pub fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

fn rlimits(p: &Process) -> Result<(), InitError> {
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let name = spelled(&r.typ());
        let res = rlimit_resource(&name).ok_or_else(|| {
            InitError::Config(format!("process.rlimits[{i}]: unknown type {name}"))
        })?;
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: lim is a valid rlimit struct.
        let ret = unsafe { libc::setrlimit(res, &lim) };
        nix::errno::Errno::result(ret).ctx(|| {
            format!(
                "process.rlimits[{i}] {name} soft={} hard={}",
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

fn lsm(p: &Process) -> Result<(), InitError> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let text = format!("exec {profile}");
        std::fs::write("/proc/self/attr/apparmor/exec", &text)
            .or_else(|_| std::fs::write("/proc/self/attr/exec", &text))
            .ctx(|| format!("process.apparmorProfile {profile}"))?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        std::fs::write("/proc/self/attr/exec", label)
            .ctx(|| format!("process.selinuxLabel {label}"))?;
    }
    Ok(())
}

/// Converts an OCI capability list into the kernel's, dropping those this kernel lacks.
fn cap_set(list: &Option<oci_spec::runtime::Capabilities>, supported: &CapsHashSet) -> CapsHashSet {
    list.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<Capability>().ok())
        .filter(|c| supported.contains(c))
        .collect()
}

/// Switches to process.user keeping exactly the configured capabilities.
fn user_and_caps(p: &Process) -> Result<(), InitError> {
    let user = p.user();
    let supported = caps::runtime::thread_all_supported();
    let caps_cfg: Option<&LinuxCapabilities> = p.capabilities().as_ref();
    if let Some(c) = caps_cfg {
        caps::set(
            None,
            CapSet::Inheritable,
            &cap_set(c.inheritable(), &supported),
        )
        .map_err(caps_err("inheritable"))?;
        let bounding = cap_set(c.bounding(), &supported);
        for cap in supported.difference(&bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(caps_err("bounding"))?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).ctx(|| "keep capabilities".into())?;
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| (*g).into())
        .collect();
    match nix::unistd::setgroups(&gids) {
        Err(nix::errno::Errno::EPERM) if gids.is_empty() => {}
        other => {
            other.ctx(|| format!("process.user.additionalGids {:?}", user.additional_gids()))?
        }
    }
    let (uid, gid) = (user.uid(), user.gid());
    nix::unistd::setresgid(gid.into(), gid.into(), gid.into())
        .ctx(|| format!("process.user.gid {gid}"))?;
    nix::unistd::setresuid(uid.into(), uid.into(), uid.into())
        .ctx(|| format!("process.user.uid {uid}"))?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "keep capabilities".into())?;
    if let Some(c) = caps_cfg {
        let effective = cap_set(c.effective(), &supported);
        let permitted = cap_set(c.permitted(), &supported);
        if !effective.is_subset(&permitted) {
            let extra: HashSet<_> = effective
                .difference(&permitted)
                .map(|c| c.to_string())
                .collect();
            return Err(InitError::Config(format!(
                "process.capabilities.effective: {extra:?} not in permitted"
            )));
        }
        caps::set(None, CapSet::Effective, &effective).map_err(caps_err("effective"))?;
        caps::set(None, CapSet::Permitted, &permitted).map_err(caps_err("permitted"))?;
        // The kernel raises an ambient capability only when it is permitted and
        // inheritable; runc's own template lists ambient ones that are not, and
        // runc skips those: so does berth.
        let inheritable = cap_set(c.inheritable(), &supported);
        let ambient: CapsHashSet = cap_set(c.ambient(), &supported)
            .into_iter()
            .filter(|a| permitted.contains(a) && inheritable.contains(a))
            .collect();
        caps::set(None, CapSet::Ambient, &ambient).map_err(caps_err("ambient"))?;
    }
    Ok(())
}

fn caps_err(set: &'static str) -> impl Fn(caps::errors::CapsError) -> InitError {
    move |e| InitError::Config(format!("process.capabilities.{set}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability as OciCap;

    #[test]
    fn oci_caps_map_to_kernel_caps() {
        let all = caps::all();
        let set = cap_set(
            &Some(
                [OciCap::Chown, OciCap::NetBindService, OciCap::Bpf]
                    .into_iter()
                    .collect(),
            ),
            &all,
        );
        assert!(set.contains(&Capability::CAP_CHOWN));
        assert!(set.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert!(set.contains(&Capability::CAP_BPF));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
    }
}
