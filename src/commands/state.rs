//! `berth state`: the OCI state of one container, as indented JSON.

use crate::error::Error;
use crate::lifecycle;
use crate::state::Store;

pub fn run(store: &Store, id: &str) -> Result<i32, Error> {
    let dir = super::open(store, id)?;
    let rec = lifecycle::load(&dir)?;
    let status = dir.status(&rec);
    let text =
        serde_json::to_string_pretty(&rec.oci(status)).map_err(|e| Error::msg(e.to_string()))?;
    println!("{text}");
    Ok(0)
}
