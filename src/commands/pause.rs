//! `pause` and `resume`: freeze or thaw every process of a running container
//! (v1 freezer.state, v2 cgroup.freeze); `state` then reports `paused`.

use crate::error::Error;
use crate::lifecycle;
use crate::state::{Status, Store};

pub fn run(store: &Store, id: &str, pause: bool) -> Result<i32, Error> {
    let dir = super::open(store, id)?;
    dir.lock()?;
    let rec = lifecycle::load(&dir)?;
    match (dir.status(&rec), pause) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => {
            return Err(Error::msg(format!("container {id} is already paused")))
        }
        (Status::Running, false) => {
            return Err(Error::msg(format!("container {id} is not paused")))
        }
        (Status::Stopped, _) => return Err(Error::msg("container not running")),
        (s, _) => return Err(Error::msg(format!("container {id} is {s}, not running"))),
    }
    rec.cgroup.freeze(pause)?;
    Ok(0)
}
