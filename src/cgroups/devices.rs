//! Device access rules: linux.resources.devices in order, then the devices every
//! container gets (runc's list: null, zero, full, random, urandom, tty, ptmx,
//! pts, and mknod of anything), then the nodes of linux.devices. On v1 they are
//! written to devices.deny/devices.allow after denying everything; on cgroup2
//! they become an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) where the last
//! matching rule decides and nothing matching means no access.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{write, Cgroup, CgroupError};

/// One rule; `None` numbers are wildcards.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (all), 'c' or 'b'.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// A subset of "rwm".
    pub access: String,
}

impl Rule {
    pub fn allow(kind: char, major: i64, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow: true,
            kind,
            major: Some(major),
            minor,
            access: access.into(),
        }
    }

    /// The v1 file syntax: "c 1:3 rwm", "a *:* rwm".
    pub fn v1_line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        if self.kind == 'a' {
            return "a".into();
        }
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// The rule of one linux.resources.devices entry.
pub fn from_spec(d: &LinuxDeviceCgroup, i: usize) -> Result<Rule, CgroupError> {
    let field = format!("linux.resources.devices[{i}]");
    let bad = |message: String| CgroupError::Config {
        field: field.clone(),
        message,
    };
    let kind = match d.typ().map(|t| t.as_str().to_string()).as_deref() {
        None | Some("a") => 'a',
        Some("c") | Some("u") => 'c',
        Some("b") => 'b',
        Some(other) => return Err(bad(format!("unknown type {other:?}"))),
    };
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || access.chars().any(|c| !"rwm".contains(c)) {
        return Err(bad(format!("access {access:?} is not a subset of \"rwm\"")));
    }
    let num = |v: Option<i64>| v.filter(|v| *v >= 0);
    Ok(Rule {
        allow: d.allow(),
        kind,
        major: num(d.major()),
        minor: num(d.minor()),
        access,
    })
}

/// The devices every container may use.
pub fn defaults() -> Vec<Rule> {
    vec![
        Rule {
            allow: true,
            kind: 'c',
            major: None,
            minor: None,
            access: "m".into(),
        },
        Rule {
            allow: true,
            kind: 'b',
            major: None,
            minor: None,
            access: "m".into(),
        },
        Rule::allow('c', 1, Some(3), "rwm"), // null
        Rule::allow('c', 1, Some(8), "rwm"), // random
        Rule::allow('c', 1, Some(7), "rwm"), // full
        Rule::allow('c', 5, Some(0), "rwm"), // tty
        Rule::allow('c', 1, Some(5), "rwm"), // zero
        Rule::allow('c', 1, Some(9), "rwm"), // urandom
        Rule::allow('c', 136, None, "rwm"),  // pts
        Rule::allow('c', 5, Some(2), "rwm"), // ptmx
    ]
}

/// Allow rules for the nodes of linux.devices (the container may use what it was
/// given).
pub fn node_rules(linux: Option<&oci_spec::runtime::Linux>) -> Vec<Rule> {
    linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .map(|d| {
            let kind = if d.typ().as_str() == "b" { 'b' } else { 'c' };
            Rule::allow(kind, d.major(), Some(d.minor()), "rwm")
        })
        .collect()
}

/// Every rule, in the order they take effect.
pub fn rules(r: Option<&LinuxResources>, extra: &[Rule]) -> Result<Vec<Rule>, CgroupError> {
    let mut out = Vec::new();
    for (i, d) in r
        .and_then(|r| r.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push(from_spec(d, i)?);
    }
    out.extend(defaults());
    out.extend_from_slice(extra);
    Ok(out)
}

/// Applies the rules at create (update leaves them alone: rules that hooks added
/// must survive it).
pub fn apply(cg: &Cgroup, r: Option<&LinuxResources>, extra: &[Rule]) -> Result<(), CgroupError> {
    let rules = rules(r, extra)?;
    if let Some(d) = cg
        .dirs
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == "devices"))
    {
        write(&d.path, "devices.deny", "a", "devices")?;
        for (i, rule) in rules.iter().enumerate() {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(&d.path, file, &rule.v1_line(), &format!("devices[{i}]"))?;
        }
        return Ok(());
    }
    if cg.is_unified() {
        if let Some(d) = cg.unified() {
            attach(&d.path, &program(&rules))?;
        }
    }
    Ok(())
}

// eBPF encoding (include/uapi/linux/bpf.h).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV32_X: u8 = 0xbc;
const MOV64_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | (dst & 0xf);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// The program: r2 = device type, r3 = requested access, r4 = major, r5 = minor;
/// then one block per rule, last rule first, each returning its verdict on a
/// match; no match returns 0 (denied).
pub fn program(rules: &[Rule]) -> Vec<[u8; 8]> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        // Each check is a jump over the rest of the block when it fails.
        let mut checks: Vec<Vec<(u8, u8, u8, i32)>> = Vec::new();
        match rule.kind {
            'c' => checks.push(vec![(JNE_K, 2, 0, DEV_CHAR)]),
            'b' => checks.push(vec![(JNE_K, 2, 0, DEV_BLOCK)]),
            _ => {}
        }
        let bits = access_bits(&rule.access);
        if bits != 7 {
            checks.push(vec![
                (MOV32_X, 1, 3, 0),
                (AND32_K, 1, 0, bits),
                (JNE_X, 1, 3, 0),
            ]);
        }
        if let (Some(m), true) = (rule.major, rule.kind != 'a') {
            checks.push(vec![(JNE_K, 4, 0, m as i32)]);
        }
        if let (Some(m), true) = (rule.minor, rule.kind != 'a') {
            checks.push(vec![(JNE_K, 5, 0, m as i32)]);
        }
        let flat: Vec<(u8, u8, u8, i32)> = checks.into_iter().flatten().collect();
        let len = flat.len() + 2;
        for (i, (code, dst, src, imm)) in flat.iter().copied().enumerate() {
            let off = if code == JNE_K || code == JNE_X {
                (len - i - 1) as i16
            } else {
                0
            };
            p.push(insn(code, dst, src, off, imm));
        }
        p.push(insn(MOV64_K, 0, 0, 0, i32::from(rule.allow)));
        p.push(insn(EXIT, 0, 0, 0, 0));
        if rule.kind == 'a' && bits == 7 {
            // Nothing before a rule that matches every device can take effect.
            return p;
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to the fields berth sets.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf_err(what: &str, dir: &Path) -> CgroupError {
    CgroupError::Io {
        what: format!("devices: {what} for {}", dir.display()),
        source: std::io::Error::last_os_error(),
    }
}

/// Loads the program and attaches it to the cgroup2 directory `dir`.
pub fn attach(dir: &Path, prog: &[[u8; 8]]) -> Result<(), CgroupError> {
    let license = c"Apache";
    let mut name = [0u8; 16];
    name[..5].copy_from_slice(b"berth");
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        // No verifier log: a log buffer the program's log outgrows fails the
        // load with ENOSPC (long rule lists, such as a GPU's nodes, do).
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        prog_name: name,
        ..Default::default()
    };
    // SAFETY: attr points to a live, fully initialised bpf_attr prefix; insns
    // and license point to buffers that outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if fd < 0 {
        return Err(bpf_err("load the eBPF device program", dir));
    }
    // SAFETY: BPF_PROG_LOAD returned a new descriptor owned by nothing else.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cgroup = std::fs::File::open(dir).map_err(|source| CgroupError::Io {
        what: format!("open {}", dir.display()),
        source,
    })?;
    let attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: attach is a valid bpf_attr prefix; both descriptors are open.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if ret < 0 {
        return Err(bpf_err("attach the eBPF device program", dir));
    }
    Ok(())
}

/// `union bpf_attr` for BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

/// `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

/// Replaces the device programs attached to the cgroup2 directory `dir` by one
/// running `prog` (attached before the old ones go, so the cgroup is never
/// without one). Programs attached together must all allow an access, so a
/// hook that adds devices to a running container's cgroup cannot just attach
/// another: it replaces.
pub fn replace(dir: &Path, prog: &[[u8; 8]]) -> Result<(), CgroupError> {
    let cgroup = std::fs::File::open(dir).map_err(|source| CgroupError::Io {
        what: format!("open {}", dir.display()),
        source,
    })?;
    let mut ids = [0u32; 64];
    let mut query = ProgQuery {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    // SAFETY: query is a valid bpf_attr prefix; prog_ids points to prog_cnt u32s
    // that outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &mut query as *mut ProgQuery,
            std::mem::size_of::<ProgQuery>(),
        )
    };
    if ret < 0 {
        return Err(bpf_err("query the eBPF device programs", dir));
    }
    let old = &ids[..(query.prog_cnt as usize).min(ids.len())];
    attach(dir, prog)?;
    for id in old {
        let by_id = GetFdById {
            prog_id: *id,
            ..Default::default()
        };
        // SAFETY: by_id is a valid bpf_attr prefix for BPF_PROG_GET_FD_BY_ID.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_GET_FD_BY_ID,
                &by_id as *const GetFdById,
                std::mem::size_of::<GetFdById>(),
            )
        };
        if fd < 0 {
            return Err(bpf_err("open an old eBPF device program", dir));
        }
        // SAFETY: BPF_PROG_GET_FD_BY_ID returned a new descriptor owned by nothing else.
        let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let detach = ProgAttach {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
            replace_bpf_fd: 0,
        };
        // SAFETY: detach is a valid bpf_attr prefix; both descriptors are open.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_DETACH,
                &detach as *const ProgAttach,
                std::mem::size_of::<ProgAttach>(),
            )
        };
        if ret < 0 {
            return Err(bpf_err("detach an old eBPF device program", dir));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lines_and_spec_rules() {
        assert_eq!(Rule::allow('c', 1, Some(3), "rwm").v1_line(), "c 1:3 rwm");
        assert_eq!(Rule::allow('c', 136, None, "rw").v1_line(), "c 136:* rw");
        let d: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        let r = from_spec(&d, 0).unwrap();
        assert_eq!((r.kind, r.allow, r.v1_line().as_str()), ('a', false, "a"));
        let bad: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"c","access":"rwx"}"#).unwrap();
        assert!(from_spec(&bad, 3)
            .unwrap_err()
            .to_string()
            .contains("devices[3]"));
    }

    #[test]
    fn program_stops_at_a_rule_matching_everything() {
        let deny_all = Rule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        };
        let p = program(&[Rule::allow('c', 1, Some(3), "rwm"), deny_all.clone()]);
        // header (6) + the deny-all block (mov + exit) only.
        assert_eq!(p.len(), 8);
        let p = program(&[deny_all, Rule::allow('c', 1, Some(3), "rw")]);
        // header + [type, 3 access, major, minor, mov, exit] + deny-all block.
        assert_eq!(p.len(), 6 + 8 + 2);
    }
}
