//! What a container asks for, read from its process env as the NVIDIA container
//! toolkit reads it: NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES,
//! NVIDIA_REQUIRE_* (space-separated alternatives of comma-joined constraints),
//! NVIDIA_DISABLE_REQUIRE and CUDA_VERSION; and the check of the requirements
//! against a driver.

use std::collections::BTreeSet;

use super::driver::{Driver, Gpu};
use super::NvidiaError;

pub const CAPABILITIES: &[&str] = &[
    "compute", "compat32", "display", "graphics", "ngx", "utility", "video",
];

/// Which GPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Devices {
    All,
    /// The driver and its control nodes, no GPU.
    None,
    /// Indexes or UUIDs (or UUID prefixes), as given.
    List(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub devices: Devices,
    pub capabilities: BTreeSet<String>,
    /// Each NVIDIA_REQUIRE_* value (and CUDA_VERSION's), all of which must hold.
    pub requirements: Vec<(String, String)>,
}

fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The request in `env`, or None when the container asks for no GPU
/// (NVIDIA_VISIBLE_DEVICES unset, empty or `void`).
pub fn from_env(env: &[String]) -> Result<Option<Request>, NvidiaError> {
    let visible = match env_value(env, "NVIDIA_VISIBLE_DEVICES").map(str::trim) {
        None | Some("") | Some("void") => return Ok(None),
        Some("all") => Devices::All,
        Some("none") => Devices::None,
        Some(list) => Devices::List(
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    let mut capabilities = BTreeSet::new();
    match env_value(env, "NVIDIA_DRIVER_CAPABILITIES").map(str::trim) {
        None | Some("") => {
            capabilities.extend(["utility".to_string(), "compute".to_string()]);
        }
        Some(list) => {
            for c in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if c == "all" {
                    capabilities.extend(CAPABILITIES.iter().map(|c| c.to_string()));
                } else if CAPABILITIES.contains(&c) {
                    capabilities.insert(c.to_string());
                } else {
                    return Err(NvidiaError::Request {
                        var: "NVIDIA_DRIVER_CAPABILITIES".into(),
                        what: format!(
                            "unknown capability {c:?} (known: all, {})",
                            CAPABILITIES.join(", ")
                        ),
                    });
                }
            }
        }
    }
    let disabled = env_value(env, "NVIDIA_DISABLE_REQUIRE")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    let mut requirements = Vec::new();
    if !disabled {
        for e in env {
            if let Some((k, v)) = e.split_once('=') {
                if k.starts_with("NVIDIA_REQUIRE_") && !v.trim().is_empty() {
                    requirements.push((k.to_string(), v.trim().to_string()));
                }
            }
        }
        if env_value(env, "NVIDIA_REQUIRE_CUDA").is_none() {
            if let Some(v) = env_value(env, "CUDA_VERSION") {
                let mut parts = v.trim().split('.');
                if let (Some(a), Some(b)) = (parts.next(), parts.next()) {
                    requirements.push(("CUDA_VERSION".into(), format!("cuda>={a}.{b}")));
                }
            }
        }
    }
    Ok(Some(Request {
        devices: visible,
        capabilities,
        requirements,
    }))
}

impl Request {
    /// The selected GPUs of `driver`; an index or UUID it lacks is an error.
    pub fn select<'a>(&self, driver: &'a Driver) -> Result<Vec<&'a Gpu>, NvidiaError> {
        match &self.devices {
            Devices::All => Ok(driver.gpus.iter().collect()),
            Devices::None => Ok(Vec::new()),
            Devices::List(ids) => {
                let mut out: Vec<&Gpu> = Vec::new();
                for id in ids {
                    let gpu = if id.bytes().all(|b| b.is_ascii_digit()) {
                        id.parse::<usize>().ok().and_then(|i| driver.gpus.get(i))
                    } else {
                        let hits: Vec<&Gpu> = driver
                            .gpus
                            .iter()
                            .filter(|g| id.len() >= 8 && g.uuid.starts_with(id.as_str()))
                            .collect();
                        (hits.len() == 1).then(|| hits[0])
                    };
                    let gpu = gpu.ok_or_else(|| NvidiaError::Request {
                        var: "NVIDIA_VISIBLE_DEVICES".into(),
                        what: format!(
                            "no GPU {id} (the driver has {}: {})",
                            driver.gpus.len(),
                            driver
                                .gpus
                                .iter()
                                .map(|g| format!("{} {}", g.index, g.uuid))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })?;
                    if !out.iter().any(|g| g.minor == gpu.minor) {
                        out.push(gpu);
                    }
                }
                Ok(out)
            }
        }
    }

    /// Every requirement must hold for the driver (each is a set of alternatives).
    pub fn check(&self, driver: &Driver) -> Result<(), NvidiaError> {
        for (var, expr) in &self.requirements {
            let ok = expr.split_whitespace().any(|alt| {
                alt.split(',')
                    .all(|c| constraint(c, driver).unwrap_or(false))
            });
            if !ok {
                return Err(NvidiaError::Unmet {
                    var: var.clone(),
                    expr: expr.clone(),
                    have: format!(
                        "driver {}, CUDA {}.{}",
                        driver.version, driver.cuda.0, driver.cuda.1
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Dotted versions as numbers, for comparison ("12.2" < "12.10").
fn version(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// One constraint (`cuda>=11.0`, `driver<471`, `brand=tesla`); None when it
/// cannot be decided here (arch, brand): such an alternative does not hold.
fn constraint(c: &str, driver: &Driver) -> Option<bool> {
    let ops = [">=", "<=", "!=", "=", ">", "<"];
    let (key, op, value) = ops.iter().find_map(|op| {
        let (k, v) = c.split_once(op)?;
        Some((k.trim(), *op, v.trim()))
    })?;
    let have = match key {
        "cuda" => vec![u64::from(driver.cuda.0), u64::from(driver.cuda.1)],
        "driver" => version(&driver.version),
        _ => return None,
    };
    let mut want = version(value);
    let mut have = have;
    // Compare on the given precision: driver>=470 means major 470 or later.
    have.truncate(want.len().max(1));
    want.resize(have.len(), 0);
    let ord = have.cmp(&want);
    Some(match op {
        ">=" => ord.is_ge(),
        "<=" => ord.is_le(),
        ">" => ord.is_gt(),
        "<" => ord.is_lt(),
        "!=" => ord.is_ne(),
        _ => ord.is_eq(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn driver() -> Driver {
        let gpu = |i: usize, uuid: &str| Gpu {
            index: i,
            minor: i as u32,
            uuid: uuid.into(),
            bus_id: format!("0000:0{i}:00.0"),
            model: "Fake".into(),
        };
        Driver {
            root: "/".into(),
            version: "535.104.05".into(),
            cuda: (12, 2),
            gpus: vec![gpu(0, "GPU-aaaaaaaa-0000"), gpu(1, "GPU-bbbbbbbb-1111")],
            control: Vec::new(),
            gpu_nodes: BTreeMap::new(),
            libs: BTreeMap::new(),
            libs32: BTreeMap::new(),
        }
    }

    #[test]
    fn visible_devices_forms() {
        assert_eq!(from_env(&env(&[])).unwrap(), None);
        assert_eq!(
            from_env(&env(&["NVIDIA_VISIBLE_DEVICES=void"])).unwrap(),
            None
        );
        let none = from_env(&env(&["NVIDIA_VISIBLE_DEVICES=none"]))
            .unwrap()
            .unwrap();
        assert!(none.select(&driver()).unwrap().is_empty());
        let all = from_env(&env(&["NVIDIA_VISIBLE_DEVICES=all"]))
            .unwrap()
            .unwrap();
        assert_eq!(all.select(&driver()).unwrap().len(), 2);
        assert_eq!(
            all.capabilities.iter().collect::<Vec<_>>(),
            ["compute", "utility"]
        );
        let one = from_env(&env(&["NVIDIA_VISIBLE_DEVICES=GPU-bbbbbbbb"]))
            .unwrap()
            .unwrap();
        assert_eq!(one.select(&driver()).unwrap()[0].index, 1);
        let bad = from_env(&env(&["NVIDIA_VISIBLE_DEVICES=0,7"]))
            .unwrap()
            .unwrap();
        let err = bad.select(&driver()).unwrap_err().to_string();
        assert!(
            err.contains("NVIDIA_VISIBLE_DEVICES") && err.contains("no GPU 7"),
            "{err}"
        );
    }

    #[test]
    fn capabilities_are_checked() {
        let r = from_env(&env(&[
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_DRIVER_CAPABILITIES=all",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.capabilities.len(), CAPABILITIES.len());
        let err = from_env(&env(&[
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_DRIVER_CAPABILITIES=compute,warp",
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("NVIDIA_DRIVER_CAPABILITIES") && err.contains("warp"),
            "{err}"
        );
    }

    #[test]
    fn requirements_or_of_ands() {
        let d = driver();
        let req = |e: &[&str]| {
            let mut v = vec!["NVIDIA_VISIBLE_DEVICES=all"];
            v.extend_from_slice(e);
            from_env(&env(&v)).unwrap().unwrap().check(&d)
        };
        assert!(req(&["NVIDIA_REQUIRE_CUDA=cuda>=12.0"]).is_ok());
        assert!(req(&["NVIDIA_REQUIRE_CUDA=cuda>=12.4"]).is_err());
        assert!(
            req(&["NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=535,driver<536"]).is_err()
        );
        assert!(req(&["NVIDIA_REQUIRE_CUDA=cuda>=12.4 driver>=535,driver<536"]).is_ok());
        assert!(req(&["CUDA_VERSION=12.4.1"]).is_err());
        assert!(req(&["CUDA_VERSION=12.4.1", "NVIDIA_DISABLE_REQUIRE=true"]).is_ok());
        let err = req(&["NVIDIA_REQUIRE_CUDA=cuda>=13.0"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("NVIDIA_REQUIRE_CUDA") && err.contains("CUDA 12.2"),
            "{err}"
        );
    }
}
