//! One file per verb: each turns its parsed arguments into calls on the launcher,
//! lifecycle and state modules, and returns the process exit status.

mod create;
mod delete;
mod features;
mod kill;
mod list;
mod run;
mod spec;
mod start;
mod state;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::state::{ContainerDir, Store};

/// Runs one command; Ok carries the exit status.
pub fn dispatch(cli: &Cli, cmd: &Command) -> Result<i32, Error> {
    let store = Store::new(&cli.root);
    match cmd {
        Command::Create(a) => create::run(&store, a),
        Command::Start(a) => start::run(&store, &a.id),
        Command::Run(a) => run::run(&store, a),
        Command::State(a) => state::run(&store, &a.id),
        Command::List(a) => list::run(&store, a),
        Command::Kill(a) => kill::run(&store, a),
        Command::Delete(a) => delete::run(&store, a),
        Command::Spec(a) => spec::run(a),
        Command::Features => features::run(),
    }
}

/// Opens a container by id, with runc's "does not exist" for bad or unknown ids.
fn open(store: &Store, id: &str) -> Result<ContainerDir, Error> {
    if crate::config::validate_id(id).is_err() {
        return Err(Error::msg(format!("container {id} does not exist")));
    }
    Ok(store.open(id)?)
}
