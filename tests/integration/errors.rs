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
    std::fs::remove_file(b.dir.join("config.json")).unwrap();
    fails_cleanly(&b, "config.json: No such file or directory");
    let b = Bundle::new(&["true"]);
    let bundle = b.dir.to_str().unwrap().to_owned();
    for id in ["../escape", "a/b", "..", "bad id"] {
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
