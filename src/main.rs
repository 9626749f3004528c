//! berth: a low-level OCI container runtime, driven like runc.
//!
//! main parses the command line (accepting go-runc's and conmon's single-dash long
//! flags), re-executes from a sealed binary for commands that enter a container,
//! runs the command and reports any error as one line, exit status 1.

use berth::{cli, commands, logging, seal, state};

use std::ffi::OsString;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let args = hook_alias(normalize_args(std::env::args_os().collect()));
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("berth: {}", first.trim_start_matches("error: "));
            return 1;
        }
    };
    if cli.version {
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        println!("commit: {}", env!("BERTH_COMMIT"));
        println!("spec: {}", state::OCI_VERSION);
        return 0;
    }
    logging::init(cli.log.clone(), cli.log_format, cli.debug);
    let Some(cmd) = &cli.command else {
        let _ = Cli::command().print_help();
        return 0;
    };
    if matches!(cmd, Command::Create(_) | Command::Run(_)) {
        if let Err(e) = seal::ensure_sealed() {
            logging::error(&e.to_string());
            return 1;
        }
    }
    match commands::dispatch(&cli, cmd) {
        Ok(code) => code,
        Err(e) => {
            logging::error(&e.to_string().replace('\n', " "));
            1
        }
    }
}

/// Invoked as `nvidia-container-runtime-hook [flags] STAGE` (a symlink to berth,
/// where dockerd and engines look for the NVIDIA toolkit's hook): the same as
/// `berth hook nvidia STAGE`. The toolkit's own flags (`-config`, `-debug`) are
/// accepted and ignored.
fn hook_alias(args: Vec<OsString>) -> Vec<OsString> {
    let name = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name != "nvidia-container-runtime-hook" && name != "nvidia-container-toolkit" {
        return args;
    }
    let stage = args
        .iter()
        .skip(1)
        .rev()
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .cloned()
        .unwrap_or_else(|| OsString::from("prestart"));
    ["berth", "hook", "nvidia"]
        .iter()
        .map(OsString::from)
        .chain(std::iter::once(stage))
        .collect()
}

/// Rewrites single-dash long flags (`-no-subreaper`, `-pid-file=F`) to the double-
/// dash form, up to the first positional argument after the subcommand (the id),
/// so that arguments of the container's own command are never touched.
fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let root = Cli::command();
    let mut out = Vec::with_capacity(args.len());
    let mut cmd: Option<clap::Command> = None;
    let mut iter = args.into_iter();
    if let Some(arg0) = iter.next() {
        out.push(arg0);
    }
    let mut takes_value_next = false;
    for arg in iter.by_ref() {
        if takes_value_next {
            takes_value_next = false;
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str().map(str::to_owned) else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            out.push(arg);
            break;
        }
        if !s.starts_with('-') {
            out.push(arg);
            match &cmd {
                None => match root.find_subcommand(&s) {
                    Some(sub) => cmd = Some(sub.clone()),
                    None => break,
                },
                Some(_) => break,
            }
            continue;
        }
        let scope = cmd.as_ref().unwrap_or(&root);
        let body = s.trim_start_matches('-');
        let (name, has_value) = match body.split_once('=') {
            Some((n, _)) => (n, true),
            None => (body, false),
        };
        let known = scope
            .get_arguments()
            .chain(root.get_arguments())
            .find(|a| a.get_long() == Some(name));
        let long_form = !s.starts_with("--") && name.len() > 1 && known.is_some();
        if let Some(a) = known {
            takes_value_next = !has_value && a.get_action().takes_values();
        }
        out.push(if long_form {
            format!("-{s}").into()
        } else {
            arg
        });
    }
    out.extend(iter);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags() {
        assert_eq!(
            norm(&[
                "berth",
                "-root",
                "/r",
                "run",
                "-no-subreaper",
                "-pid-file=/p",
                "-b",
                "/b",
                "id"
            ]),
            [
                "berth",
                "--root",
                "/r",
                "run",
                "--no-subreaper",
                "--pid-file=/p",
                "-b",
                "/b",
                "id"
            ]
        );
        assert_eq!(
            norm(&[
                "berth",
                "create",
                "--bundle",
                "-weird-dir",
                "id",
                "-no-pivot"
            ]),
            [
                "berth",
                "create",
                "--bundle",
                "-weird-dir",
                "id",
                "-no-pivot"
            ]
        );
        assert_eq!(
            norm(&["berth", "kill", "id", "-9"]),
            ["berth", "kill", "id", "-9"]
        );
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
