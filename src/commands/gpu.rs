//! `berth gpu info` and `berth gpu cdi generate`: what berth finds of the NVIDIA
//! driver on this host, and a CDI spec for it.

use std::collections::BTreeSet;
use std::io::Write;

use crate::cli::{CdiCommand, GpuArgs, GpuCommand, ListFormat};
use crate::error::{Error, ResultExt};
use crate::hooks::nvidia::request::{Devices, Request};
use crate::hooks::nvidia::{cdi, driver_root, Driver, Plan};

pub fn run(args: &GpuArgs) -> Result<i32, Error> {
    match &args.command {
        GpuCommand::Info {
            nvidia_root,
            format,
        } => info(
            &Driver::discover(&driver_root(nvidia_root.as_deref()))?,
            *format,
        ),
        GpuCommand::Cdi {
            command:
                CdiCommand::Generate {
                    nvidia_root,
                    output,
                },
        } => {
            let driver = Driver::discover(&driver_root(nvidia_root.as_deref()))?;
            // Every GPU and every capability but compat32 (as the toolkit's
            // generator): the spec's consumers pick devices, not capabilities.
            let request = Request {
                devices: Devices::All,
                capabilities: ["compute", "display", "graphics", "ngx", "utility", "video"]
                    .map(String::from)
                    .into_iter()
                    .collect::<BTreeSet<_>>(),
                requirements: Vec::new(),
            };
            let plan = Plan::new(driver, &request)?;
            let exe = std::env::current_exe().with(|| "find berth's own path".into())?;
            let spec = cdi::generate(&plan, &exe);
            let mut text = serde_json::to_string_pretty(&spec)
                .map_err(|e| Error::msg(format!("CDI spec: {e}")))?;
            text.push('\n');
            match output {
                Some(path) => crate::state::write_atomic(path, text.as_bytes())?,
                None => std::io::stdout()
                    .write_all(text.as_bytes())
                    .with(|| "write stdout".into())?,
            }
            Ok(0)
        }
    }
}

fn info(d: &Driver, format: ListFormat) -> Result<i32, Error> {
    let mut out = String::new();
    if format == ListFormat::Json {
        out = serde_json::to_string_pretty(d).map_err(|e| Error::msg(e.to_string()))?;
        out.push('\n');
    } else {
        out += &format!("driver root:    {}\n", d.root.display());
        out += &format!("driver version: {}\n", d.version);
        out += &format!("CUDA version:   {}.{}\n", d.cuda.0, d.cuda.1);
        out += &format!("GPUs:           {}\n", d.gpus.len());
        for g in &d.gpus {
            out += &format!(
                "  GPU {}: {} ({}, bus {}, /dev/nvidia{})\n",
                g.index, g.model, g.uuid, g.bus_id, g.minor
            );
        }
        for n in &d.control {
            out += &format!("device:         {} ({}:{})\n", n.path, n.major, n.minor);
        }
        out += &format!(
            "libraries:      {} (64-bit), {} (32-bit) in the ld cache\n",
            d.libs.keys().filter(|k| k.starts_with("lib")).count(),
            d.libs32.len()
        );
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .with(|| "write stdout".into())?;
    Ok(0)
}
