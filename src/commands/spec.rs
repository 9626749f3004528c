//! `berth spec`: write a template config.json (runc's, or its rootless variant).

use crate::cli::SpecArgs;
use crate::error::{Error, ResultExt};

pub fn run(args: &SpecArgs) -> Result<i32, Error> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        return Err(Error::msg(format!(
            "{} exists: remove it first",
            path.display()
        )));
    }
    let mut spec = if args.rootless {
        oci_spec::runtime::Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        oci_spec::runtime::Spec::default()
    };
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
    }
    spec.set_version(crate::state::OCI_VERSION.to_string());
    let text = serde_json::to_string_pretty(&spec).map_err(|e| Error::msg(e.to_string()))?;
    std::fs::write(&path, text + "\n").with(|| format!("write {}", path.display()))?;
    Ok(0)
}
