//! `berth start`: release a created container's init.

use crate::error::Error;
use crate::lifecycle;
use crate::state::Store;

pub fn run(store: &Store, id: &str) -> Result<i32, Error> {
    let dir = super::open(store, id)?;
    dir.lock()?;
    let rec = lifecycle::load(&dir)?;
    lifecycle::start(&dir, &rec)?;
    Ok(0)
}
