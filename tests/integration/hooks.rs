//! Hooks: each point runs in order with the state on stdin, in the bundle
//! directory, with its env; failures before start fail and leave nothing.

use serde_json::{json, Value};

use crate::common::*;

fn hook(log: &std::path::Path, name: &str) -> Value {
    let script = format!("echo {name} $(pwd) $HOOK_ENV $(cat) >> {}", log.display());
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["HOOK_ENV=set"]})
}

#[test]
fn hooks_see_state_in_order() {
    let mut b = Bundle::new(&["true"]);
    let log = b.dir.join("hooks.log");
    let l = log.clone();
    b.edit(|c| {
        let mut hooks = serde_json::Map::new();
        for name in [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop",
        ] {
            hooks.insert(name.into(), json!([hook(&l, name)]));
        }
        c["hooks"] = Value::Object(hooks);
        c["root"]["readonly"] = json!(false);
    });
    let bundle = b.dir.to_str().unwrap().to_owned();
    b.create("h");
    let pid = b.state("h")["pid"].as_i64().unwrap();
    b.berth(&["start", "h"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(200));
    b.berth(&["delete", "h"]).ok();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    for (line, status) in lines
        .iter()
        .zip(["creating", "creating", "creating", "running", "stopped"])
    {
        let json_part = &line[line.find('{').unwrap()..];
        let st: Value = serde_json::from_str(json_part).unwrap();
        assert_eq!(st["status"], status, "{line}");
        assert_eq!(st["id"], "h");
        assert_eq!(st["bundle"], bundle.as_str());
        assert!(line.contains(" set "), "{line}");
        // createContainer runs in the container's namespaces: it sees init as PID 1.
        let want_pid = if line.starts_with("createContainer") {
            serde_json::json!(1)
        } else {
            serde_json::json!(pid)
        };
        if status != "stopped" {
            assert_eq!(st["pid"], want_pid, "{line}");
        }
    }
    assert!(lines[0].contains(&format!(" {bundle} ")), "{}", lines[0]);
}

#[test]
fn start_container_hook_runs_inside() {
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/seen; cp /tmp/seen /dev/shm/seen"]}]});
        c["process"]["args"] = json!(["sh", "-c", "sleep 0.1; cat /tmp/seen"]);
    });
    let out = b.run("sc");
    let st: Value = serde_json::from_str(out.ok().trim()).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], 1);
}

#[test]
fn failing_hooks_fail_create_and_leave_nothing() {
    for point in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| {
            c["hooks"] =
                json!({point: [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 2"]}]})
        });
        let bundle = b.dir.to_str().unwrap().to_owned();
        let out = b.berth(&["create", "--bundle", &bundle, "f"]);
        assert_eq!(out.code, 1, "{point}");
        assert!(
            out.stderr
                .contains(&format!("hooks.{point}[0] /bin/sh: exit status: 2: nope")),
            "{}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1);
        assert!(b.residue().is_empty(), "{point}: {:?}", b.residue());
    }
}

#[test]
fn hook_timeout_fails_create() {
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}));
    let bundle = b.dir.to_str().unwrap().to_owned();
    let out = b.berth(&["create", "--bundle", &bundle, "to"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("timed out after 1s"), "{}", out.stderr);
    assert!(b.residue().is_empty());
}
