//! oci-conformance: drives an OCI runtime binary through bundles generated from the
//! runtime specification and checks what it observes (from the host and, through
//! runtimetest, from inside the container). Prints TAP per group and a last line
//! `N passed, N failed, N skipped`; exits non-zero on any failure.
//!
//! Usage: oci-conformance [--filter GROUP] [--skips FILE] --checker RUNTIMETEST RUNTIME

mod cgroups;
mod groups;
mod harness;

use std::path::PathBuf;

use harness::{Report, Runtime};

fn usage() -> ! {
    eprintln!("usage: oci-conformance [--filter GROUP] [--skips FILE] --checker RUNTIMETEST RUNTIME_BINARY");
    eprintln!("groups: {}", groups::GROUPS.join(" "));
    std::process::exit(2)
}

/// Skip list lines: `check-name-prefix | reason`; `#` starts a comment.
fn read_skips(path: Option<&PathBuf>) -> Vec<(String, String)> {
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('|'))
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut filter, mut skips, mut checker, mut runtime) = (None, None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--filter" => filter = args.next(),
            "--skips" => skips = args.next().map(PathBuf::from),
            "--checker" => checker = args.next().map(PathBuf::from),
            "-h" | "--help" => usage(),
            _ if runtime.is_none() => runtime = Some(PathBuf::from(a)),
            _ => usage(),
        }
    }
    let (Some(runtime), Some(checker)) = (runtime, checker) else {
        usage()
    };
    let work = std::env::temp_dir().join(format!("oci-conformance-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("oci-conformance: {}: {e}", work.display());
        std::process::exit(2);
    }
    let rt = Runtime::new(runtime, &work);
    let mut report = Report::new(read_skips(skips.as_ref()));
    for group in groups::GROUPS {
        if filter.as_deref().is_some_and(|f| f != group) {
            continue;
        }
        if let Err(e) = groups::run(group, &rt, &checker, &mut report) {
            report.check(&format!("{group}/fixture"), false, &e.to_string());
            rt.cleanup();
        }
    }
    rt.cleanup();
    let _ = std::fs::remove_dir_all(&work);
    report.plan();
    println!(
        "{} passed, {} failed, {} skipped",
        report.passed, report.failed, report.skipped
    );
    std::process::exit(if report.failed > 0 { 1 } else { 0 });
}
