//! `berth delete`: remove a stopped (or created) container; --force kills a running
//! one first and succeeds when the id does not exist.

use crate::cli::DeleteArgs;
use crate::error::Error;
use crate::lifecycle;
use crate::state::{StateError, Status, Store};

pub fn run(store: &Store, args: &DeleteArgs) -> Result<i32, Error> {
    let dir = match super::open(store, &args.id) {
        Err(Error::State(StateError::NotFound(_))) | Err(Error::Msg(_)) if args.force => {
            return Ok(0)
        }
        other => other?,
    };
    dir.lock()?;
    let Some(rec) = dir.read()? else {
        // A create that died before it wrote any state: nothing runs, remove the rest.
        lifecycle::destroy(dir, None, false)?;
        return Ok(0);
    };
    let status = dir.status(&rec);
    if matches!(status, Status::Running | Status::Paused) && !args.force {
        return Err(Error::msg(format!(
            "cannot delete container {} that is not stopped: {status}",
            rec.id
        )));
    }
    // Created and forced containers are killed; a stopped one may still have an
    // orphaned init from a create that was killed, or processes left in its
    // cgroup: destroy kills them first.
    lifecycle::destroy(dir, Some(&rec), true)?;
    Ok(0)
}
