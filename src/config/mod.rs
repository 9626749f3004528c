//! Loads a bundle's config.json into an `oci_spec` Spec, naming the JSON field of any
//! parse error, then validates it (see `validate`) before anything is created.

pub mod validate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use validate::{ns_proc_name, validate_id, NamespacePlan};

/// The most config.json may weigh; larger files are refused before parsing.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: file is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("config.json: {field}: {message}")]
    Parse { field: String, message: String },
    #[error("config.json: {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("invalid container id {0:?}: an id is 1-1024 characters of letters, digits, '_', '+', '-' and '.', and not '.' or '..'")]
    Id(String),
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A loaded, validated bundle.
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// config.json exactly as read: kept in the state dir, so later commands never
    /// see edits made to the bundle after create.
    pub raw: Vec<u8>,
    /// How each namespace is obtained.
    pub namespaces: NamespacePlan,
}

/// Reads, parses and validates `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Bundle, ConfigError> {
    let dir = std::path::absolute(bundle)
        .and_then(|d| d.canonicalize())
        .map_err(|source| ConfigError::Bundle {
            path: bundle.to_path_buf(),
            source,
        })?;
    let path = dir.join("config.json");
    let raw = read_limited(&path)?;
    let spec = parse(&raw)?;
    let rootfs = validate::rootfs(&dir, &spec)?;
    let namespaces = validate::validate(&spec)?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        raw,
        namespaces,
    })
}

/// The bundle with its config replaced by `raw` (edited by berth itself: GPUs,
/// CDI devices), parsed and validated again.
pub fn reparse(bundle: Bundle, raw: Vec<u8>) -> Result<Bundle, ConfigError> {
    let spec = parse(&raw)?;
    let namespaces = validate::validate(&spec)?;
    Ok(Bundle {
        spec,
        raw,
        namespaces,
        ..bundle
    })
}

/// Reads a file of at most MAX_CONFIG_BYTES.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut raw = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(read_err)?;
    if raw.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(raw)
}

/// Parses config.json bytes; errors name the JSON path of the offending field.
pub fn parse(raw: &[u8]) -> Result<Spec, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." || p == "?" => "(document)".to_string(),
            p => p,
        };
        ConfigError::Parse {
            field,
            message: short_serde_message(&e.inner().to_string()),
        }
    })
}

/// serde's "expected one of `A`, `B`, ..." lists run to hundreds of characters; keep
/// the message to one readable line.
fn short_serde_message(msg: &str) -> String {
    match msg.find(", expected one of") {
        Some(i) => {
            let rest = &msg[i..];
            let tail = rest.find(" at line ").map(|j| &rest[j..]).unwrap_or("");
            format!("{}{}", &msg[..i], tail)
        }
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_field() {
        let err =
            parse(br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":"x","gid":0}}}"#)
                .unwrap_err();
        assert!(err.to_string().contains("process.user.uid"), "{err}");
        let err = parse(b"{not json").unwrap_err();
        assert!(err.to_string().starts_with("config.json:"), "{err}");
        let err = parse(
            br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_NOPE"]}}}"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("process.capabilities.bounding"), "{text}");
        assert!(text.contains("CAP_NOPE"), "{text}");
        assert!(text.len() < 200, "{text}");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let spec = parse(br#"{"ociVersion":"1.0.2","somethingNew":{"a":1}}"#).unwrap();
        assert_eq!(spec.version(), "1.0.2");
    }
}
