//! What create does for GPUs: turns `--gpus` into NVIDIA_VISIBLE_DEVICES and
//! applies the CDI devices named by `--device` or by `cdi.k8s.io/*` annotations
//! to the config (before anything else reads it), then plans the built-in
//! injection when the env asks for GPUs and no NVIDIA hook is configured.

use std::path::PathBuf;

use serde_json::Value;

use super::{cdi, driver_root, has_hook, plan_for, NvidiaError, Plan};
use crate::cli::GpuFlags;
use crate::config::{self, Bundle};
use crate::error::Error;

/// The NVIDIA_VISIBLE_DEVICES value for a `--gpus` argument (docker's forms).
pub fn visible_devices(gpus: &str) -> Result<String, NvidiaError> {
    let g = gpus.trim().trim_matches(|c| c == '"' || c == '\'');
    let bad = || NvidiaError::Request {
        var: "--gpus".into(),
        what: format!("{gpus:?}: expected all, a count, device=LIST or GPU-<uuid>"),
    };
    if g == "all" || g.starts_with("GPU-") {
        return Ok(g.to_string());
    }
    if let Some(list) = g.strip_prefix("device=") {
        if list.is_empty() {
            return Err(bad());
        }
        return Ok(list.to_string());
    }
    let n: usize = g.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    Ok((0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(","))
}

/// The bundle with --gpus and CDI devices applied to its config.
pub fn edit_config(bundle: Bundle, flags: &GpuFlags) -> Result<Bundle, Error> {
    let mut names = flags.cdi_devices.clone();
    names.extend(cdi::annotated(bundle.spec.annotations().as_ref()));
    if flags.gpus.is_none() && names.is_empty() {
        // The common case: no second parse of config.json.
        return Ok(bundle);
    }
    let mut value: Value =
        serde_json::from_slice(&bundle.raw).map_err(|e| Error::msg(format!("config.json: {e}")))?;
    if let Some(g) = &flags.gpus {
        let env = format!("NVIDIA_VISIBLE_DEVICES={}", visible_devices(g)?);
        if !value["process"]["env"].is_array() {
            value["process"]["env"] = Value::Array(Vec::new());
        }
        if let Some(a) = value["process"]["env"].as_array_mut() {
            a.push(Value::String(env));
        }
    }
    let dirs: Vec<PathBuf> = if flags.cdi_spec_dirs.is_empty() {
        cdi::SPEC_DIRS.iter().map(PathBuf::from).collect()
    } else {
        flags.cdi_spec_dirs.clone()
    };
    cdi::apply(&mut value, &names, &dirs)?;
    let raw =
        serde_json::to_vec_pretty(&value).map_err(|e| Error::msg(format!("config.json: {e}")))?;
    Ok(config::reparse(bundle, raw)?)
}

/// The built-in injection for this config, if its env asks for GPUs and no
/// NVIDIA prestart hook will do it. CUDA images carry NVIDIA_VISIBLE_DEVICES=all
/// in their own env: on a host with no driver at all they run without GPUs, as
/// under runc, unless GPUs were asked for explicitly (--gpus, a driver root).
pub fn plan(bundle: &Bundle, flags: &GpuFlags) -> Result<Option<Plan>, Error> {
    if has_hook(&bundle.spec) {
        return Ok(None);
    }
    let explicit = flags.gpus.is_some()
        || flags.nvidia_root.is_some()
        || std::env::var_os("BERTH_NVIDIA_ROOT").is_some_and(|v| !v.is_empty());
    match plan_for(&bundle.spec, &driver_root(flags.nvidia_root.as_deref())) {
        Err(NvidiaError::NoDriver { root, why }) if !explicit => {
            crate::logging::debug(&format!(
                "NVIDIA_VISIBLE_DEVICES is set but there is no driver under {} ({why}): no GPUs",
                root.display()
            ));
            Ok(None)
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_flag_forms() {
        assert_eq!(visible_devices("all").unwrap(), "all");
        assert_eq!(visible_devices("2").unwrap(), "0,1");
        assert_eq!(visible_devices("device=0,2").unwrap(), "0,2");
        assert_eq!(visible_devices("\"device=1\"").unwrap(), "1");
        assert_eq!(visible_devices("GPU-1234").unwrap(), "GPU-1234");
        for bad in ["0", "many", "device=", ""] {
            let e = visible_devices(bad).unwrap_err().to_string();
            assert!(e.starts_with("--gpus: "), "{bad}: {e}");
        }
    }
}
