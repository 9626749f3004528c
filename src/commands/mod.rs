//! One file per verb: each turns its parsed arguments into calls on the launcher,
//! lifecycle and state modules, and returns the process exit status.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod gpu;
mod hook;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::state::{ContainerDir, Store};

/// Runs one command; Ok carries the exit status.
pub fn dispatch(cli: &Cli, cmd: &Command) -> Result<i32, Error> {
    let store = Store::new(&cli.root);
    match cmd {
        Command::Create(a) => create::run(&store, a, cli.systemd_cgroup),
        Command::Start(a) => start::run(&store, &a.id),
        Command::Run(a) => run::run(&store, a, cli.systemd_cgroup),
        Command::State(a) => state::run(&store, &a.id),
        Command::List(a) => list::run(&store, a),
        Command::Kill(a) => kill::run(&store, a),
        Command::Delete(a) => delete::run(&store, a),
        Command::Spec(a) => spec::run(a),
        Command::Features => features::run(),
        Command::Exec(a) => exec::run(&store, a),
        Command::Update(a) => update::run(&store, a),
        Command::Pause(a) => pause::run(&store, &a.id, true),
        Command::Resume(a) => pause::run(&store, &a.id, false),
        Command::Ps(a) => ps::run(&store, a),
        Command::Gpu(a) => gpu::run(a),
        Command::Hook(a) => hook::run(&a.command),
        Command::Events(a) => events::run(&store, a),
    }
}

/// Opens a container by id, with runc's "does not exist" for bad or unknown ids.
fn open(store: &Store, id: &str) -> Result<ContainerDir, Error> {
    if crate::config::validate_id(id).is_err() {
        return Err(Error::msg(format!("container {id} does not exist")));
    }
    Ok(store.open(id)?)
}
