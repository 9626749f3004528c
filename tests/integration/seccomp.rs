//! linux.seccomp, observed from inside: the errno a denied syscall returns, death
//! by SIGSYS, argument comparisons, unknown names skipped, filter mode in
//! /proc/self/status, and invalid profiles refused with nothing left behind.

use serde_json::json;

use crate::common::*;

fn with_profile(args: &[&str], profile: serde_json::Value) -> Bundle {
    let mut b = Bundle::new(args);
    b.edit(|c| c["linux"]["seccomp"] = profile);
    b
}

#[test]
fn errno_action_and_filter_mode() {
    let b = with_profile(
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /tmp/x; echo rc=$?",
        ],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}),
    );
    let out = b.run("errno");
    assert!(out.stdout.contains("Seccomp:\t2"), "{}", out.stdout);
    assert!(out.stdout.contains("rc=1"), "{}", out.stdout);
    assert!(
        out.stderr.contains("Function not implemented"),
        "{}",
        out.stderr
    );
}

#[test]
fn kill_action_gives_sigsys() {
    let b = with_profile(
        &["uname"],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
    );
    assert_eq!(b.run("sigsys").code, 128 + libc::SIGSYS);
}

#[test]
fn argument_comparisons() {
    // kill(pid, SIGUSR1) is refused; kill(pid, 0) still works.
    let b = with_profile(
        &[
            "sh",
            "-c",
            "kill -0 $$ && echo zero-ok; kill -USR1 $$; echo usr1-rc=$?",
        ],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]}),
    );
    let out = b.run("args");
    assert!(out.stdout.contains("zero-ok\nusr1-rc=1"), "{out:?}");
    // MASKED_EQ: value is the mask, valueTwo the value: deny when sig & 0xf == 0xa.
    let b = with_profile(
        &[
            "sh",
            "-c",
            "kill -USR1 $$; echo usr1-rc=$?; kill -0 $$; echo zero-rc=$?",
        ],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 15, "valueTwo": 10, "op": "SCMP_CMP_MASKED_EQ"}]}]}),
    );
    assert_eq!(b.run("masked").ok(), "usr1-rc=1\nzero-rc=0\n");
}

#[test]
fn default_errno_allow_list() {
    // An allow list in the style of engines' profiles: everything busybox echo
    // needs is allowed, anything else returns EPERM.
    let allowed = [
        "execve",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "mprotect",
        "readlinkat",
        "getrandom",
        "write",
        "exit_group",
        "getuid",
        "geteuid",
        "getpid",
        "getppid",
        "rt_sigaction",
        "rt_sigprocmask",
        "uname",
        "newfstatat",
        "fstat",
        "ioctl",
        "mmap",
        "munmap",
        "readlink",
        "close",
        "read",
        "fcntl",
        "getcwd",
        "stat",
        "lstat",
        "openat",
        "access",
        "faccessat",
        "faccessat2",
        "statx",
    ];
    let b = with_profile(
        &["echo", "allowed"],
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [{"names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert_eq!(b.run("allow").ok(), "allowed\n");
}

#[test]
fn invalid_profiles_fail_cleanly() {
    for (profile, field) in [
        (
            json!({"defaultAction": "SCMP_ACT_BOGUS"}),
            "linux.seccomp.defaultAction",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}),
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}),
            "linux.seccomp.flags[0]",
        ),
    ] {
        let b = with_profile(&["true"], profile);
        let bundle = b.dir.to_str().unwrap().to_owned();
        let out = b.berth(&["create", "--bundle", &bundle, "bad"]);
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains(field), "want {field}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1);
        assert!(b.residue().is_empty(), "{:?}", b.residue());
    }
}

#[test]
fn filter_without_no_new_privileges() {
    let mut b = with_profile(
        &["sh", "-c", "mkdir /tmp/y; echo rc=$?"],
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    assert_eq!(b.run("nonnp").ok(), "rc=1\n");
}
