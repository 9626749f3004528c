//! Semantic checks of a parsed Spec, done before any side effect of create: each
//! failure names the config field. Also builds the namespace plan (new, joined,
//! inherited) that the launcher follows.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxNamespaceType, Spec};

use super::ConfigError;

/// `_IO(0xb7, 0x3)`: asks a namespace fd which type it is.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

pub const ALL_NAMESPACES: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
];

/// The clone(2) flag of a namespace type (oci-spec's discriminants are those flags).
pub fn clone_flag(t: LinuxNamespaceType) -> u64 {
    t as u64
}

/// The name of a namespace type as /proc/<pid>/ns spells it.
pub fn ns_proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// How the container gets each namespace.
#[derive(Debug, Default, Clone)]
pub struct NamespacePlan {
    /// Namespaces to create (clone flags).
    pub new: u64,
    /// Namespaces to join, user first, in the order setns must happen.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl NamespacePlan {
    pub fn is_new(&self, t: LinuxNamespaceType) -> bool {
        self.new & clone_flag(t) != 0
    }
    pub fn is_joined(&self, t: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(j, _)| *j == t)
    }
    /// New or joined: the container does not share the host's namespace.
    pub fn is_private(&self, t: LinuxNamespaceType) -> bool {
        self.is_new(t) || self.is_joined(t)
    }
}

/// Valid container ids: runc's `^[\w+-\.]+$`, not "." or "..", at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Id(id.to_string()))
    }
}

/// Resolves root.path against the bundle and checks it is a directory.
pub fn rootfs(bundle: &Path, spec: &Spec) -> Result<PathBuf, ConfigError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| ConfigError::invalid("root", "is required"))?;
    let path = bundle.join(root.path());
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => path
            .canonicalize()
            .map_err(|e| ConfigError::invalid("root.path", format!("{}: {e}", path.display()))),
        Ok(_) => Err(ConfigError::invalid(
            "root.path",
            format!("{} is not a directory", path.display()),
        )),
        Err(_) => Err(ConfigError::invalid(
            "root.path",
            format!("rootfs {} does not exist", path.display()),
        )),
    }
}

/// All semantic checks; returns the namespace plan.
pub fn validate(spec: &Spec) -> Result<NamespacePlan, ConfigError> {
    version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| ConfigError::invalid("process", "is required to create a container"))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => {
            return Err(ConfigError::invalid(
                "process.args",
                "must name a program to run",
            ))
        }
    }
    if !process.cwd().is_absolute() {
        return Err(ConfigError::invalid(
            "process.cwd",
            "must be an absolute path",
        ));
    }
    for (i, e) in process.env().iter().flatten().enumerate() {
        if !e.contains('=') || e.starts_with('=') || e.contains('\0') {
            return Err(ConfigError::invalid(
                format!("process.env[{i}]"),
                format!("{e:?} is not KEY=VALUE"),
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        if r.soft() > r.hard() {
            return Err(ConfigError::invalid(
                format!("process.rlimits[{i}]"),
                format!(
                    "{}: soft limit {} is above hard limit {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        if !seen.insert(r.typ().to_string()) {
            return Err(ConfigError::invalid(
                format!("process.rlimits[{i}]"),
                format!("{} is set twice", r.typ()),
            ));
        }
    }
    if process
        .apparmor_profile()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        return Err(ConfigError::invalid(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host",
        ));
    }
    if process
        .selinux_label()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && !Path::new("/sys/fs/selinux/enforce").exists()
    {
        return Err(ConfigError::invalid(
            "process.selinuxLabel",
            "SELinux is not enabled on this host",
        ));
    }
    if let Some(oom) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&oom) {
            return Err(ConfigError::invalid(
                "process.oomScoreAdj",
                format!("{oom} is outside -1000..1000"),
            ));
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| ConfigError::invalid("linux", "is required on Linux"))?;
    let plan = namespaces(spec)?;
    if (linux.uid_mappings().is_some() || linux.gid_mappings().is_some())
        && !plan.is_private(LinuxNamespaceType::User)
    {
        return Err(ConfigError::invalid(
            "linux.uidMappings",
            "set without a user namespace",
        ));
    }
    if plan.is_new(LinuxNamespaceType::User) {
        for (field, maps) in [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ] {
            if maps.as_ref().is_none_or(|m| m.is_empty()) {
                return Err(ConfigError::invalid(
                    field,
                    "a new user namespace needs at least one mapping",
                ));
            }
        }
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !plan.is_private(LinuxNamespaceType::Uts)
    {
        return Err(ConfigError::invalid(
            "hostname",
            "cannot be set without a private UTS namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !plan.is_private(LinuxNamespaceType::Uts)
    {
        return Err(ConfigError::invalid(
            "domainname",
            "cannot be set without a private UTS namespace",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !plan.is_new(LinuxNamespaceType::Time)
    {
        return Err(ConfigError::invalid(
            "linux.timeOffsets",
            "needs a new time namespace",
        ));
    }
    for key in linux.time_offsets().iter().flat_map(|m| m.keys()) {
        if key != "boottime" && key != "monotonic" {
            return Err(ConfigError::invalid(
                format!("linux.timeOffsets.{key}"),
                "only boottime and monotonic have offsets",
            ));
        }
    }
    for key in linux.sysctl().iter().flat_map(|m| m.keys()) {
        sysctl(key, &plan)?;
    }
    if let Some(p) = linux.rootfs_propagation() {
        if crate::init::mounts::propagation_flag(p).is_none() {
            return Err(ConfigError::invalid(
                "linux.rootfsPropagation",
                format!("unknown propagation {p:?}"),
            ));
        }
    }
    for (field, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, p) in paths.iter().flatten().enumerate() {
            if !p.starts_with('/') {
                return Err(ConfigError::invalid(
                    format!("{field}[{i}]"),
                    format!("{p:?} is not an absolute path"),
                ));
            }
        }
    }
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if !d.path().is_absolute() {
            return Err(ConfigError::invalid(
                format!("linux.devices[{i}].path"),
                "must be an absolute path",
            ));
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        crate::init::mounts::MountPlan::parse(m)
            .map_err(|message| ConfigError::invalid(format!("mounts[{i}]"), message))?;
    }
    hooks(spec)?;
    Ok(plan)
}

fn version(v: &str) -> Result<(), ConfigError> {
    let mut parts = v.split('.');
    let major = parts.next();
    let minor = parts.next().map(|m| m.parse::<u32>().is_ok());
    if major != Some("1") || minor != Some(true) {
        return Err(ConfigError::invalid(
            "ociVersion",
            format!("unsupported version {v:?} (berth runs 1.x configs)"),
        ));
    }
    Ok(())
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn namespaces(spec: &Spec) -> Result<NamespacePlan, ConfigError> {
    let mut plan = NamespacePlan::default();
    let mut seen = HashSet::new();
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for (i, ns) in list.iter().enumerate() {
        let t = ns.typ();
        if !seen.insert(t) {
            return Err(ConfigError::invalid(
                format!("linux.namespaces[{i}]"),
                format!("{} namespace is listed twice", ns_proc_name(t)),
            ));
        }
        match ns.path() {
            None => plan.new |= clone_flag(t),
            Some(p) if p.as_os_str().is_empty() => plan.new |= clone_flag(t),
            Some(p) => {
                check_ns_path(p, t)
                    .map_err(|m| ConfigError::invalid(format!("linux.namespaces[{i}].path"), m))?;
                plan.join.push((t, p.clone()));
            }
        }
    }
    // setns into the user namespace must come first, so that the others are joined
    // with the privileges it grants; mount last, since it changes path lookup.
    plan.join.sort_by_key(|(t, _)| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    if plan.is_new(LinuxNamespaceType::Cgroup) && !Path::new("/proc/self/ns/cgroup").exists() {
        return Err(ConfigError::invalid(
            "linux.namespaces",
            "cgroup namespaces are not supported by this kernel",
        ));
    }
    if plan.is_new(LinuxNamespaceType::Time) && !Path::new("/proc/self/ns/time").exists() {
        return Err(ConfigError::invalid(
            "linux.namespaces",
            "time namespaces are not supported by this kernel",
        ));
    }
    Ok(plan)
}

/// Checks that `path` is a namespace of type `t`.
fn check_ns_path(path: &Path, t: LinuxNamespaceType) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("{}: {e}", path.display()),
    })?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the open descriptor.
    let got = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    if got < 0 {
        return Err(format!("{} is not a namespace", path.display()));
    }
    if got as u64 != clone_flag(t) {
        let actual = ALL_NAMESPACES
            .iter()
            .find(|n| clone_flag(**n) == got as u64)
            .map(|n| ns_proc_name(*n))
            .unwrap_or("unknown");
        return Err(format!(
            "{} is a {actual} namespace, not {}",
            path.display(),
            ns_proc_name(t)
        ));
    }
    Ok(())
}

/// runc's rule: a sysctl may be set only where a private namespace scopes it.
fn sysctl(key: &str, plan: &NamespacePlan) -> Result<(), ConfigError> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let field = || format!("linux.sysctl.{key}");
    if key.contains("..") || key.contains('\0') || key.starts_with('/') {
        return Err(ConfigError::invalid(field(), "is not a sysctl name"));
    }
    let needs = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        return Err(ConfigError::invalid(
            field(),
            "is not in a separate kernel namespace",
        ));
    };
    if !plan.is_private(needs) {
        return Err(ConfigError::invalid(
            field(),
            format!("needs a private {} namespace", ns_proc_name(needs)),
        ));
    }
    Ok(())
}

fn hooks(spec: &Spec) -> Result<(), ConfigError> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    let lists: [(&str, &Option<Vec<Hook>>); 6] = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (name, list) in lists {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                return Err(ConfigError::invalid(
                    format!("hooks.{name}[{i}].path"),
                    "must be an absolute path",
                ));
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                return Err(ConfigError::invalid(
                    format!("hooks.{name}[{i}].timeout"),
                    "must be positive",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", "A"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "ü", &"x".repeat(1025)] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert!(version("1.0.2").is_ok());
        assert!(version("1.3.0").is_ok());
        assert!(version("2.0.0").is_err());
        assert!(version("garbage").is_err());
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let plan = NamespacePlan {
            new: clone_flag(LinuxNamespaceType::Network),
            join: vec![],
        };
        assert!(sysctl("net.ipv4.ip_forward", &plan).is_ok());
        assert!(sysctl("kernel.shmmax", &plan).is_err());
        assert!(sysctl("vm.swappiness", &plan).is_err());
    }

    #[test]
    fn namespace_path_of_wrong_type() {
        let err =
            check_ns_path(Path::new("/proc/self/ns/net"), LinuxNamespaceType::Uts).unwrap_err();
        assert!(err.contains("is a net namespace, not uts"), "{err}");
        assert!(check_ns_path(Path::new("/proc/self/ns/uts"), LinuxNamespaceType::Uts).is_ok());
        assert!(
            check_ns_path(Path::new("/nonexistent"), LinuxNamespaceType::Uts)
                .unwrap_err()
                .contains("does not exist")
        );
    }
}
