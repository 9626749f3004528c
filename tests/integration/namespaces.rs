//! Namespaces: new ones differ from the host's, joined ones match their path,
//! unlisted ones are inherited, a path of the wrong type is refused; user
//! namespaces with several ranges; uts names; time offsets.

use serde_json::json;

use crate::common::*;

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

const KINDS: [&str; 8] = ["pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time"];

fn container_ns(b: &Bundle, id: &str) -> Vec<String> {
    let script = KINDS
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut b2 = Bundle::new(&["sh", "-c", &script]);
    b2.config = b.config.clone();
    b2.config["process"]["args"] = json!(["sh", "-c", script]);
    b2.save();
    b2.run(id).ok().lines().map(str::to_owned).collect()
}

#[test]
fn new_namespaces_differ_and_unlisted_are_inherited() {
    let b = Bundle::new(&["true"]);
    let ns = container_ns(&b, "ns");
    for (k, got) in KINDS.iter().zip(&ns) {
        let new = ["pid", "net", "ipc", "uts", "mnt"].contains(k);
        assert_eq!(got != &host_ns(k), new, "{k}: {got}");
    }
}

#[test]
fn every_namespace_new_including_user_cgroup_time() {
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "user"}, {"type": "cgroup"}, {"type": "time"}]);
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 200000, "size": 10}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 3600, "nanosecs": 0}});
    });
    let ns = container_ns(&b, "all");
    for (k, got) in KINDS.iter().zip(&ns) {
        assert_ne!(got, &host_ns(k), "{k}");
    }
    b.edit(|c| {
        c["process"]["args"] = json!([
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; cat /proc/uptime"
        ])
    });
    let out = b.run("maps");
    let text = out.ok();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "1000"]);
    assert_eq!(lines[1], ["1000", "200000", "10"]);
    assert_eq!(lines[2], ["0", "100000", "65536"]);
    assert_eq!(lines[3], ["0"]);
    let uptime: f64 = lines[4][0].parse().unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime - host > 3000.0,
        "boottime offset not applied: {uptime} vs {host}"
    );
}

#[test]
fn joined_namespaces_match_their_path() {
    let holder = Bundle::new(&["sleep", "100"]);
    let hb = holder.dir.to_str().unwrap();
    holder.berth(&["run", "-d", "--bundle", hb, "holder"]).ok();
    let pid = holder.state("holder")["pid"].as_i64().unwrap();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([{"type": "pid", "path": format!("/proc/{pid}/ns/pid")},
            {"type": "network", "path": format!("/proc/{pid}/ns/net")},
            {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}, {"type": "ipc"}, {"type": "mount"}]);
        c.as_object_mut().unwrap().remove("hostname");
    });
    let ns = container_ns(&b, "joined");
    let theirs = |k: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{k}"))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(ns[0], theirs("pid"));
    assert_eq!(ns[1], theirs("net"));
    assert_eq!(ns[3], theirs("uts"));
    assert_ne!(ns[2], theirs("ipc"));
}

#[test]
fn namespace_path_of_wrong_type_is_refused() {
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/proc/self/ns/uts"})
    });
    let out = b.run("wrong");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("linux.namespaces[1].path: /proc/self/ns/uts is a uts namespace, not net"),
        "{}",
        out.stderr
    );
    assert!(b.residue().is_empty());
}

#[test]
fn hostname_and_domainname() {
    let mut b = Bundle::new(&["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"]);
    b.edit(|c| c["domainname"] = json!("example.org"));
    assert_eq!(b.run("uts").ok(), "oci-conformance\nexample.org\n");
}

#[test]
fn sysctl_in_private_namespaces() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    ]);
    b.edit(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}));
    assert_eq!(b.run("sysctl").ok(), "1\n1234\n");
    b.edit(|c| c["linux"]["sysctl"] = json!({"vm.swappiness": "1"}));
    let out = b.run("sysctl2");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("linux.sysctl.vm.swappiness"),
        "{}",
        out.stderr
    );
}
