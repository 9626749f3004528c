//! `exec`: builds the process from --process or from the container's own process
//! with the command line's changes, starts it (src/exec.rs), and unless --detach
//! forwards signals (or relays a terminal) and exits with its status.

use nix::sys::signal::{SigSet, Signal};
use oci_spec::runtime::Process;
use serde_json::{json, Value};

use crate::cli::ExecArgs;
use crate::error::{Error, ResultExt};
use crate::exec::{self, ExecOpts};
use crate::lifecycle;
use crate::state::Store;

/// The process JSON the arguments describe.
fn process_json(store: &Store, args: &ExecArgs) -> Result<Value, Error> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read_to_string(path).with(|| format!("--process {}", path.display()))?;
        return serde_json::from_str(&text)
            .map_err(|e| Error::msg(format!("--process {}: {e}", path.display())));
    }
    if args.command.is_empty() {
        return Err(Error::msg("exec needs a command (or --process FILE)"));
    }
    let dir = super::open(store, &args.id)?;
    let spec = lifecycle::saved_spec(&dir)?;
    let mut p = serde_json::to_value(spec.process().clone().unwrap_or_default())
        .map_err(|e| Error::msg(format!("process: {e}")))?;
    p["args"] = json!(args.command);
    // Only what exec's flags set; the container's terminal size does not carry over.
    if let Some(o) = p.as_object_mut() {
        o.remove("consoleSize");
    }
    Ok(p)
}

/// Applies the flags on top of the process JSON.
fn apply_flags(p: &mut Value, args: &ExecArgs) -> Result<(), Error> {
    p["terminal"] =
        json!(args.tty || p["terminal"].as_bool().unwrap_or(false) && args.process.is_some());
    if let Some(cwd) = &args.cwd {
        p["cwd"] = json!(cwd);
    }
    if !args.env.is_empty() {
        let mut env: Vec<Value> = p["env"].as_array().cloned().unwrap_or_default();
        for e in &args.env {
            let key = e.split('=').next().unwrap_or("");
            env.retain(|v| v.as_str().and_then(|s| s.split('=').next()) != Some(key));
            env.push(json!(e));
        }
        p["env"] = Value::Array(env);
    }
    if let Some(u) = &args.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let uid: u32 = uid
            .parse()
            .map_err(|_| Error::msg(format!("--user {u:?}: expected uid[:gid]")))?;
        let gid: u32 = gid
            .parse()
            .map_err(|_| Error::msg(format!("--user {u:?}: expected uid[:gid]")))?;
        p["user"]["uid"] = json!(uid);
        p["user"]["gid"] = json!(gid);
    }
    if !args.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(args.additional_gids);
    }
    if !args.cap.is_empty() {
        for set in [
            "bounding",
            "effective",
            "permitted",
            "ambient",
            "inheritable",
        ] {
            let mut list: Vec<Value> = p["capabilities"][set]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for c in &args.cap {
                let name = c.to_ascii_uppercase();
                let name = if name.starts_with("CAP_") {
                    name
                } else {
                    format!("CAP_{name}")
                };
                if !list.iter().any(|v| v == &json!(name)) {
                    list.push(json!(name));
                }
            }
            p["capabilities"][set] = Value::Array(list);
        }
    }
    if args.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    if let Some(a) = &args.apparmor {
        p["apparmorProfile"] = json!(a);
    }
    if let Some(l) = &args.process_label {
        p["selinuxLabel"] = json!(l);
    }
    Ok(())
}

pub fn run(store: &Store, args: &ExecArgs) -> Result<i32, Error> {
    let mut p = process_json(store, args)?;
    apply_flags(&mut p, args)?;
    let process: Process = serde_path_to_error::deserialize(p)
        .map_err(|e| Error::msg(format!("process.{}: {}", e.path(), e.inner())))?;
    let opts = ExecOpts {
        id: args.id.clone(),
        process,
        console_socket: args.console_socket.clone(),
        detach: args.detach,
        pid_file: args.pid_file.clone(),
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        sub_cgroup: args.cgroup.clone(),
    };
    // Signals are blocked before the process exists, so none is lost.
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in super::run::FORWARDED {
        set.add(s);
    }
    if !args.detach {
        set.thread_block().with(|| "block signals".into())?;
    }
    let started = exec::start(store, &opts)?;
    if args.detach {
        return Ok(0);
    }
    let pid = started.pid;
    match started
        .console
        .as_ref()
        .map(crate::tty::receive_master)
        .transpose()?
    {
        Some(master) => crate::tty::relay(master, pid, &set, || super::run::reap(pid)),
        None => super::run::wait_forwarding(pid, &set),
    }
}
