//! Namespaces: joining paths (setns), creating the ones clone did not (unshare),
//! the uid/gid maps (written by the parent), time offsets, and the fork that makes
//! init PID 1 when the pid or time namespace only applies to children.

use std::io::Write;
use std::os::fd::AsFd;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use super::{Context, InitError};
use crate::config::NamespacePlan;
use crate::sync::{Channel, Msg};
use crate::syscall::{clone_fork, Forked};

const NEWUSER: u64 = libc::CLONE_NEWUSER as u64;
const NEWPID: u64 = libc::CLONE_NEWPID as u64;
const NEWTIME: u64 = libc::CLONE_NEWTIME as u64;

/// The clone flags the parent may pass to clone directly: all new namespaces when
/// nothing is joined and no time namespace is wanted (time offsets must be written
/// before any process enters it); otherwise none, and stage-1 does the work.
/// The cgroup namespace is never cloned: it is unshared after the parent moved
/// the child into the container's cgroup, which becomes its root.
pub fn clone_flags(plan: &NamespacePlan) -> u64 {
    if plan.join.is_empty() && plan.new & NEWTIME == 0 {
        plan.new & !(libc::CLONE_NEWCGROUP as u64)
    } else {
        0
    }
}

/// Runs first in the cloned child. Returns in the process that is to be init: the
/// child itself, or its own child when a pid or time namespace has to take effect.
pub fn enter(
    spec: &Spec,
    plan: &NamespacePlan,
    cloned: u64,
    sync: &Channel,
) -> Result<(), InitError> {
    for (t, path) in &plan.join {
        let file =
            std::fs::File::open(path).ctx(|| format!("open namespace {}", path.display()))?;
        let flag = CloneFlags::from_bits_retain(*t as libc::c_int);
        nix::sched::setns(file.as_fd(), flag)
            .ctx(|| format!("join {} namespace {}", ns_name(*t), path.display()))?;
        if *t == LinuxNamespaceType::User {
            become_root()?;
        }
    }
    let remaining = plan.new & !cloned;
    if remaining & NEWUSER != 0 {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "create user namespace".into())?;
    }
    if plan.new & NEWUSER != 0 {
        sync.send(&Msg::IdMapRequest)?;
        sync.expect_exactly("IdMapDone", Msg::IdMapDone)?;
        become_root()?;
    }
    let rest = remaining & !NEWUSER;
    if rest != 0 {
        nix::sched::unshare(CloneFlags::from_bits_retain(rest as libc::c_int))
            .ctx(|| "create namespaces".into())?;
    }
    if rest & NEWTIME != 0 {
        write_time_offsets(spec)?;
    }
    if forks_init(plan, cloned) {
        fork_into_init(sync)?;
    }
    Ok(())
}

/// Whether stage-1 forks init (pid and time namespaces only apply to children).
pub fn forks_init(plan: &NamespacePlan, cloned: u64) -> bool {
    let rest = plan.new & !cloned & !NEWUSER;
    rest & (NEWPID | NEWTIME) != 0
        || plan.is_joined(LinuxNamespaceType::Pid)
        || plan.is_joined(LinuxNamespaceType::Time)
}

/// Forks init. This process (stage-1) reports init's pid and exits; init waits on a
/// pipe for stage-1's byte saying the report went out, so the parent always learns
/// the pid first, and init never sets up a container nobody knows about.
fn fork_into_init(sync: &Channel) -> Result<(), InitError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    match clone_fork(0).ctx(|| "fork init".into())? {
        Forked::Parent(pid) => {
            let ok = sync.send(&Msg::InitPid { pid }).is_ok();
            if ok {
                let _ = nix::unistd::write(&w, b"1");
            }
            drop(w);
            // SAFETY: stage-1 is a forked child that must not unwind or run exit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Forked::Child => {
            drop(w);
            let mut buf = [0u8; 1];
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut buf) {
                Ok(1) => Ok(()),
                _ => Err(InitError::Config(
                    "stage-1 died before reporting init's pid".into(),
                )),
            }
        }
    }
}

fn become_root() -> Result<(), InitError> {
    nix::unistd::setresgid(0.into(), 0.into(), 0.into())
        .ctx(|| "setresgid to the namespace's root".into())?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into())
        .ctx(|| "setresuid to the namespace's root".into())?;
    Ok(())
}

fn ns_name(t: LinuxNamespaceType) -> &'static str {
    crate::config::ns_proc_name(t)
}

fn write_time_offsets(spec: &Spec) -> Result<(), InitError> {
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    if offsets.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for (clock, off) in &offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    // A non-dumpable process's /proc files belong to the host's root, out of reach
    // of the user namespace's root: be dumpable for this one write. No process of
    // the container exists yet.
    let _ = nix::sys::prctl::set_dumpable(true);
    let res = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/timens_offsets")
        .and_then(|mut f| f.write_all(text.as_bytes()));
    let _ = nix::sys::prctl::set_dumpable(false);
    res.ctx(|| "write linux.timeOffsets to /proc/self/timens_offsets".into())
}

/// Parent side: writes the uid and gid maps of the process that created the user namespace.
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<(), InitError> {
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| InitError::Config("linux is missing".into()))?;
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let text = map_text(maps.as_deref().unwrap_or(&[]));
        let path = format!("/proc/{pid}/{file}");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .ctx(|| format!("write {path} (linux.{}Mappings)", &file[..3]))?;
    }
    Ok(())
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Sets hostname and domainname in the container's UTS namespace.
pub fn set_uts(spec: &Spec) -> Result<(), InitError> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: the pointer and length describe the bytes of `d`, which outlives the call.
        let ret = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        nix::errno::Errno::result(ret).ctx(|| format!("domainname {d:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    #[test]
    fn map_lines() {
        let m = |c, h, s| {
            LinuxIdMappingBuilder::default()
                .container_id(c)
                .host_id(h)
                .size(s)
                .build()
                .unwrap()
        };
        assert_eq!(
            map_text(&[m(0u32, 100000u32, 1000u32), m(1000, 2000, 1)]),
            "0 100000 1000\n1000 2000 1\n"
        );
    }

    #[test]
    fn fast_path_only_without_joins_or_time() {
        let mut plan = NamespacePlan {
            new: NEWPID | NEWUSER,
            join: vec![],
        };
        assert_eq!(clone_flags(&plan), NEWPID | NEWUSER);
        plan.new |= NEWTIME;
        assert_eq!(clone_flags(&plan), 0);
        plan.new = NEWPID;
        plan.join
            .push((LinuxNamespaceType::Network, "/proc/1/ns/net".into()));
        assert_eq!(clone_flags(&plan), 0);
    }
}
