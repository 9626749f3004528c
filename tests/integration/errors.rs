//! Bad input: each case gives one clear line naming the field or path, exit
//! status 1, and leaves no state dir, mount or process behind.

use serde_json::json;

use crate::common::*;

/// One change to the base config.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

fn fails_cleanly(b: &Bundle, expect: &str) {
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["create", "--bundle", &bundle, "bad"]);
    assert_eq!(out.code, 1, "expected failure for {expect}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(expect),
        "want {expect:?} in {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"));
    assert!(b.residue().is_empty(), "{expect}: {:?}", b.residue());
}

#[test]
fn bad_configs() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "process.user.uid",
            Box::new(|c| c["process"]["user"]["uid"] = json!("root")),
        ),
        ("ociVersion", Box::new(|c| c["ociVersion"] = json!("2.0.0"))),
        (
            "process.args",
            Box::new(|c| c["process"]["args"] = json!([])),
        ),
        (
            "process.cwd",
            Box::new(|c| c["process"]["cwd"] = json!("relative")),
        ),
        (
            "process.env[0]",
            Box::new(|c| c["process"]["env"] = json!(["NOEQUALS"])),
        ),
        (
            "process.rlimits[0]",
            Box::new(|c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}])
            }),
        ),
        (
            "process.rlimits[0].type",
            Box::new(|c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])
            }),
        ),
        (
            "linux.namespaces[0].type",
            Box::new(|c| c["linux"]["namespaces"][0] = json!({"type": "bogus"})),
        ),
        (
            "linux.namespaces[5]",
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "pid"}))
            }),
        ),
        (
            "linux.namespaces[0].path",
            Box::new(|c| {
                c["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/nonexistent/ns"})
            }),
        ),
        (
            "mounts[7]",
            Box::new(|c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "relative", "type": "tmpfs"}))
            }),
        ),
        (
            "mounts[7]",
            Box::new(|c| {
                c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent/src", "options": ["bind"]}))
            }),
        ),
        (
            "mounts[7]",
            Box::new(|c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/x", "type": "nosuchfs", "source": "x"}))
            }),
        ),
        (
            "hostname",
            Box::new(|c| c["linux"]["namespaces"] = json!([{"type": "mount"}])),
        ),
        (
            "linux.uidMappings",
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
        ),
        (
            "hooks.prestart[0].path",
            Box::new(|c| c["hooks"] = json!({"prestart": [{"path": "relative/hook"}]})),
        ),
        (
            "linux.sysctl.kernel.panic",
            Box::new(|c| c["linux"]["sysctl"] = json!({"kernel.panic": "1"})),
        ),
        (
            "linux.rootfsPropagation",
            Box::new(|c| c["linux"]["rootfsPropagation"] = json!("sideways")),
        ),
        (
            "process.apparmorProfile",
            Box::new(|c| c["process"]["apparmorProfile"] = json!("unconfined-x")),
        ),
        (
            "process.capabilities.effective",
            Box::new(|c| c["process"]["capabilities"]["effective"] = json!(["CAP_SYS_ADMIN"])),
        ),
        (
            "root.path",
            Box::new(|c| c["root"]["path"] = json!("missing-rootfs")),
        ),
        (
            "linux.devices[0]",
            Box::new(|c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/x", "type": "z", "major": 1, "minor": 1}])
            }),
        ),
        (
            "linux.timeOffsets",
            Box::new(|c| c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 1}})),
        ),
        // Wrong types and missing sections.
        (
            "ociVersion: invalid type",
            Box::new(|c| c["ociVersion"] = json!(1)),
        ),
        (
            "process: is required",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("process");
            }),
        ),
        (
            "root: is required",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("root");
            }),
        ),
        (
            "linux.namespaces: invalid type",
            Box::new(|c| c["linux"]["namespaces"] = json!({"type": "pid"})),
        ),
        (
            "mounts: invalid type",
            Box::new(|c| c["mounts"] = json!("x")),
        ),
        (
            "process.env: invalid type",
            Box::new(|c| c["process"]["env"] = json!("PATH=/bin")),
        ),
        (
            "linux.resources.memory.limit: invalid type",
            Box::new(|c| c["linux"]["resources"] = json!({"memory": {"limit": "lots"}})),
        ),
        (
            "annotations: invalid type",
            Box::new(|c| c["annotations"] = json!(["a"])),
        ),
        (
            "process.user.additionalGids[0]: invalid type",
            Box::new(|c| c["process"]["user"]["additionalGids"] = json!(["wheel"])),
        ),
        // Unknown names.
        (
            "process.capabilities.bounding[3]: no variant for CAP_FOO",
            Box::new(|c| {
                c["process"]["capabilities"]["bounding"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_FOO"))
            }),
        ),
        (
            "linux.personality.domain: unknown variant",
            Box::new(|c| c["linux"]["personality"] = json!({"domain": "LINUX_BOGUS"})),
        ),
        (
            "process.scheduler.policy: unknown variant",
            Box::new(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_BOGUS"})),
        ),
        (
            "process.ioPriority.class: unknown variant",
            Box::new(|c| {
                c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BOGUS", "priority": 1})
            }),
        ),
        (
            "linux.seccomp.defaultAction: unknown variant",
            Box::new(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_BOGUS"})),
        ),
        // Values out of range, escaping or contradictory.
        (
            "process.rlimits[0] RLIMIT_NOFILE soft=1099511627776",
            Box::new(|c| {
                c["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "soft": 1u64 << 40, "hard": 1u64 << 40}])
            }),
        ),
        (
            "process.rlimits[1]: RLIMIT_NOFILE is set twice",
            Box::new(|c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                    {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}])
            }),
        ),
        (
            "process.oomScoreAdj: 5000 is outside -1000..1000",
            Box::new(|c| c["process"]["oomScoreAdj"] = json!(5000)),
        ),
        (
            "hooks.prestart[0].timeout: must be positive",
            Box::new(|c| c["hooks"] = json!({"prestart": [{"path": "/bin/true", "timeout": 0}]})),
        ),
        (
            "linux.cgroupsPath: \"/../../escape\" must not contain . or .. components",
            Box::new(|c| c["linux"]["cgroupsPath"] = json!("/../../escape")),
        ),
        (
            "linux.sysctl.net.ipv4.ip_forward: needs a private net namespace",
            Box::new(|c| {
                c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "network");
            }),
        ),
        (
            "linux.uidMappings: set without a user namespace",
            Box::new(|c| {
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}])
            }),
        ),
        (
            "linux.maskedPaths[0]: \"relative/path\" is not an absolute path",
            Box::new(|c| c["linux"]["maskedPaths"] = json!(["relative/path"])),
        ),
        (
            "linux.devices[0].path: must be an absolute path",
            Box::new(|c| {
                c["linux"]["devices"] =
                    json!([{"path": "relative", "type": "c", "major": 1, "minor": 3}])
            }),
        ),
        (
            "option \"bogusopt\" is not a bind mount option",
            Box::new(|c| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/x",
                    "type": "bind", "source": "/etc/passwd", "options": ["bind", "bogusopt"]}))
            }),
        ),
        (
            "net namespace is listed twice",
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "network", "path": "/proc/self/ns/net"}))
            }),
        ),
        (
            "exec: \"/nonexistent-binary\": stat /nonexistent-binary: no such file or directory",
            Box::new(|c| c["process"]["args"] = json!(["/nonexistent-binary"])),
        ),
    ];
    for (expect, edit) in cases {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| edit(c));
        fails_cleanly(&b, expect);
    }
}

#[test]
fn bad_files_and_ids() {
    let b = Bundle::new(&["true"]);
    std::fs::write(b.dir.join("config.json"), "{ not json").unwrap();
    fails_cleanly(&b, "config.json: (document)");
    std::fs::write(b.dir.join("config.json"), vec![b' '; 5 << 20]).unwrap();
    fails_cleanly(&b, "is larger than");
    std::fs::write(b.dir.join("config.json"), b"\xff\xfe{").unwrap();
    fails_cleanly(&b, "config.json: (document): expected value");
    std::fs::write(b.dir.join("config.json"), "[".repeat(100_000)).unwrap();
    fails_cleanly(&b, "config.json: ");
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", b.dir.join("config.json")).unwrap();
    fails_cleanly(&b, "is larger than");
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    std::fs::create_dir(b.dir.join("config.json")).unwrap();
    fails_cleanly(&b, "config.json: Is a directory");
    std::fs::remove_dir(b.dir.join("config.json")).unwrap();
    fails_cleanly(&b, "config.json: No such file or directory");
    // The rootfs is a file.
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["root"]["path"] = json!("config.json"));
    fails_cleanly(&b, "is not a directory");
    let b = Bundle::new(&["true"]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    let long = "a".repeat(2000);
    for id in ["../escape", "a/b", "..", "bad id", "", long.as_str()] {
        let out = b.berth(&["create", "--bundle", &bundle, id]);
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains("invalid container id"),
            "{}",
            out.stderr
        );
        assert!(b.residue().is_empty());
    }
    let out = b.berth(&["create", "--bundle", "/nonexistent/bundle", "x"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("/nonexistent/bundle"), "{}", out.stderr);
}
