//! linux.seccomp: compiles the OCI profile into a libseccomp filter (default action
//! and errno, architectures, syscalls with their argument comparisons) and loads
//! it with the profile's flags.
//! Syscall names this architecture lacks are skipped, as runc does; an unsupported
//! action, operator or flag is an error naming the entry. The filter is compiled by
//! the parent before anything is created (or read from the cache, see `cache`), and
//! init loads the BPF with seccomp(2) itself, as late as it can be.

pub mod agent;
mod cache;

use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("linux.seccomp: {what}: {source}")]
    Lib {
        what: String,
        source: libseccomp::error::SeccompError,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn lib(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let what = what.into();
    move |source| SeccompError::Lib { what, source }
}

/// Serde's spelling of an oci-spec enum value ("SCMP_ACT_ERRNO", ...).
fn spelled<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The libseccomp action of an OCI action; `errno` is errnoRet (EPERM by default).
fn action(
    a: LinuxSeccompAction,
    errno: Option<u32>,
    field: &str,
) -> Result<ScmpAction, SeccompError> {
    let ret = errno.unwrap_or(libc::EPERM as u32);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            if ret > u16::MAX as u32 {
                return Err(invalid(
                    field,
                    format!("errnoRet {ret} is above {}", u16::MAX),
                ));
            }
            ScmpAction::Errno(ret as i32)
        }
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret.min(u16::MAX as u32) as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

/// The comparison of one argument entry.
fn compare(
    arg: &oci_spec::runtime::LinuxSeccompArg,
    field: &str,
) -> Result<ScmpArgCompare, SeccompError> {
    if arg.index() > 5 {
        return Err(invalid(field, format!("index {} is above 5", arg.index())));
    }
    let op = match spelled(&arg.op()).as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // OCI: value is the mask, valueTwo the value the masked argument must equal.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(ScmpArgCompare::new(
                arg.index() as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            ))
        }
        other => return Err(invalid(field, format!("unknown operator {other:?}"))),
    };
    Ok(ScmpArgCompare::new(arg.index() as u32, op, arg.value()))
}

/// Syscalls init itself makes between loading the filter and handing the notify
/// descriptor to the listener: notifying them would wait for a listener that cannot
/// have the descriptor yet.
const NOT_NOTIFIABLE: &[&str] = &["sendmsg", "sendto", "recvmsg", "recvfrom", "close"];

/// Whether any rule sends its syscall to a listener.
pub fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .iter()
        .flatten()
        .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
}

/// The checks of the notify fields, which libseccomp cannot make.
fn check_notify(s: &LinuxSeccomp) -> Result<(), SeccompError> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(invalid(
            "defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        if rule.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        if let Some(name) = rule
            .names()
            .iter()
            .find(|n| NOT_NOTIFIABLE.contains(&n.as_str()))
        {
            return Err(invalid(
                format!("syscalls[{i}]"),
                format!("SCMP_ACT_NOTIFY cannot be used for {name}: berth needs it to hand over the listener descriptor"),
            ));
        }
    }
    let path = s
        .listener_path()
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty());
    match path {
        None if uses_notify(s) => Err(invalid(
            "listenerPath",
            "is required when a rule uses SCMP_ACT_NOTIFY",
        )),
        None if s.listener_metadata().is_some() => Err(invalid(
            "listenerMetadata",
            "must not be set without listenerPath",
        )),
        Some(p) if !p.is_absolute() => Err(invalid(
            "listenerPath",
            format!("{} is not an absolute path", p.display()),
        )),
        _ => Ok(()),
    }
}

/// Compiles the profile (nothing is loaded).
pub fn build(s: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    check_notify(s)?;
    let default = action(s.default_action(), s.default_errno_ret(), "defaultAction")?;
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("create filter"))?;
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let name = spelled(a);
        let arch = ScmpArch::from_str(&name).map_err(|_| {
            invalid(
                format!("architectures[{i}]"),
                format!("unknown architecture {name}"),
            )
        })?;
        ctx.add_arch(arch)
            .map_err(lib(format!("architectures[{i}] {name}")))?;
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        add_rule(&mut ctx, rule, default, &format!("syscalls[{i}]"))?;
    }
    Ok(ctx)
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default: ScmpAction,
    field: &str,
) -> Result<(), SeccompError> {
    let act = action(rule.action(), rule.errno_ret(), field)?;
    if act == default {
        // libseccomp refuses a rule that repeats the default action; it is a no-op.
        return Ok(());
    }
    let args = rule.args().clone().unwrap_or_default();
    let conds = args
        .iter()
        .enumerate()
        .map(|(j, a)| compare(a, &format!("{field}.args[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
    // Conditions on the same argument cannot be ANDed by libseccomp: as runc does,
    // such entries become one rule each.
    let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
    indexes.sort_unstable();
    let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
    for name in rule.names() {
        // Names this architecture does not know are skipped, as runc does.
        let Ok(sc) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let what = || format!("{field} {name}");
        if conds.is_empty() {
            ctx.add_rule(act, sc).map_err(lib(what()))?;
        } else if repeated {
            for c in &conds {
                ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                    .map_err(lib(what()))?;
            }
        } else {
            ctx.add_rule_conditional(act, sc, &conds)
                .map_err(lib(what()))?;
        }
    }
    Ok(())
}

/// A compiled filter: BPF instructions and the seccomp(2) flags to load them with.
pub struct Filter {
    bpf: Vec<u8>,
    flags: libc::c_uint,
}

impl Filter {
    /// Whether loading returns a notify descriptor for the listener.
    pub fn notifies(&self) -> bool {
        self.flags & NEW_LISTENER != 0
    }
}

const NEW_LISTENER: libc::c_uint = 8;
const WAIT_KILLABLE_RECV: libc::c_uint = 32;

/// The seccomp(2) flags of the profile's `flags`; berth loads the BPF itself, so
/// these are the only place the flags take effect.
fn kernel_flags(s: &LinuxSeccomp) -> Result<libc::c_uint, SeccompError> {
    let mut flags = 0;
    for (i, f) in s.flags().iter().flatten().enumerate() {
        flags |= match spelled(f).as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => 1,
            "SECCOMP_FILTER_FLAG_LOG" => 2,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => 4,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" if uses_notify(s) => WAIT_KILLABLE_RECV,
            other => {
                return Err(invalid(
                    format!("flags[{i}]"),
                    format!("{other} needs a rule with SCMP_ACT_NOTIFY"),
                ))
            }
        };
    }
    if uses_notify(s) {
        if flags & 1 != 0 {
            return Err(invalid(
                "flags",
                "SECCOMP_FILTER_FLAG_TSYNC cannot be combined with SCMP_ACT_NOTIFY",
            ));
        }
        flags |= NEW_LISTENER;
    }
    Ok(flags)
}

/// Compiles the profile, or takes it from the cache in `cache_dir`.
pub fn prepare(s: &LinuxSeccomp, cache_dir: &Path) -> Result<Filter, SeccompError> {
    let key = serde_json::to_vec(s).map_err(|e| invalid("(profile)", e.to_string()))?;
    check_notify(s)?;
    let flags = kernel_flags(s)?;
    if let Some(bpf) = cache::get(cache_dir, &key) {
        return Ok(Filter { bpf, flags });
    }
    let bpf = export(&build(s)?)?;
    cache::put(cache_dir, &key, &bpf);
    Ok(Filter { bpf, flags })
}

/// The filter's BPF program (libseccomp 2.5 exports only to a descriptor).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, SeccompError> {
    let io = |e: std::io::Error| invalid("(export)", e.to_string());
    // SAFETY: the name is a valid C string; memfd_create returns a new descriptor.
    let fd = unsafe { libc::memfd_create(c"berth-bpf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    ctx.export_bpf(&file).map_err(lib("export filter"))?;
    let mut bpf = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bpf))
        .map_err(io)?;
    Ok(bpf)
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const libc::c_void,
}

/// Loads the filter into this process (init). libseccomp's own load would also set
/// no_new_privs, which a config may have turned off: seccomp(2) directly does not.
/// With a notify rule, returns the listener descriptor the kernel made.
pub fn load(f: &Filter) -> Result<Option<OwnedFd>, SeccompError> {
    let prog = SockFprog {
        len: (f.bpf.len() / 8) as libc::c_ushort,
        filter: f.bpf.as_ptr().cast(),
    };
    // SAFETY: prog points to f.bpf, a whole number of 8-byte sock_filter entries
    // that libseccomp produced, alive for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            f.flags,
            &prog as *const SockFprog,
        )
    };
    if ret < 0 {
        return Err(invalid(
            "(load)",
            std::io::Error::last_os_error().to_string(),
        ));
    }
    if !f.notifies() {
        return Ok(None);
    }
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2) returns
    // a new descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn builds_a_profile_and_skips_unknown_names() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "flags":["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls":[{"names":["mkdir","no_such_syscall_here"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
            {"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":10,"op":"SCMP_CMP_EQ"}]},
            {"names":["personality"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":255,"valueTwo":8,"op":"SCMP_CMP_MASKED_EQ"},{"index":0,"value":1,"op":"SCMP_CMP_NE"}]},
            {"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        build(&p).unwrap();
    }

    #[test]
    fn prepare_caches_the_compiled_program() {
        let dir = std::env::temp_dir().join(format!("berth-seccomp-{}", std::process::id()));
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        let first = prepare(&p, &dir).unwrap();
        assert!(!first.bpf.is_empty() && first.bpf.len() % 8 == 0);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let second = prepare(&p, &dir).unwrap();
        assert_eq!(first.bpf, second.bpf);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_entries_name_their_field() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let err = build(&p).unwrap_err().to_string();
        assert!(err.contains("linux.seccomp.syscalls[0].args[0]"), "{err}");
        let p = profile(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#);
        assert!(build(&p).unwrap_err().to_string().contains("defaultAction"));
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        );
        let err = kernel_flags(&p).unwrap_err().to_string();
        assert!(err.contains("linux.seccomp.flags[1]"), "{err}");
    }
}
