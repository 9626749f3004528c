//! The command line, runc's: global flags, one argument struct per verb. Behaviour
//! lives in `commands`; this file only describes what can be typed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::Format;
use crate::state::DEFAULT_ROOT;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "berth: an OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory holding container state
    #[arg(long, global = true, default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,
    /// Write berth's log to FILE
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: Format,
    /// Log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd's cgroup path format (slice:prefix:name)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (true, false or auto)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "VALUE")]
    pub rootless: Option<String>,
    /// Print version, commit and spec version
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; it waits for start before exec
    Create(CreateArgs),
    /// Start a created container
    Start(IdArg),
    /// Create and start a container, and wait for it unless --detach
    Run(RunArgs),
    /// Print a container's state as JSON
    State(IdArg),
    /// List containers
    List(ListArgs),
    /// Send a signal to a container's init (or all its processes)
    Kill(KillArgs),
    /// Delete a container and its state
    Delete(DeleteArgs),
    /// Write a template config.json
    Spec(SpecArgs),
    /// Print the features berth supports, as JSON
    Features,
    /// Run a new process inside a created or running container
    Exec(ExecArgs),
    /// Change a running container's resource limits
    Update(UpdateArgs),
    /// Freeze every process of a container
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// List a container's processes (with ps's own arguments after the id)
    Ps(PsArgs),
    /// Print a container's resource usage and OOM events as JSON lines
    Events(EventsArgs),
    /// NVIDIA GPUs on this host: info, CDI specs
    Gpu(GpuArgs),
    /// Built-in hooks (`hook nvidia prestart` is nvidia-container-runtime-hook)
    Hook(HookArgs),
}

/// Where GPUs come from, for create and run.
#[derive(Args, Debug, Clone, Default)]
pub struct GpuFlags {
    /// Give the container NVIDIA GPUs: all, a count N, device=0,2, or GPU-<uuid>
    #[arg(long, value_name = "GPUS")]
    pub gpus: Option<String>,
    /// Give the container a CDI device (vendor.com/class=name), repeatable
    #[arg(long = "device", value_name = "CDI_NAME")]
    pub cdi_devices: Vec<String>,
    /// Directory of CDI specs (default: /etc/cdi and /var/run/cdi), repeatable
    #[arg(long = "cdi-spec-dir", value_name = "DIR")]
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// Root of the NVIDIA driver's files (default: $BERTH_NVIDIA_ROOT or /)
    #[arg(long, value_name = "DIR")]
    pub nvidia_root: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GpuArgs {
    #[command(subcommand)]
    pub command: GpuCommand,
}

#[derive(Subcommand, Debug)]
pub enum GpuCommand {
    /// Print the driver and GPUs berth finds
    Info {
        /// Root of the NVIDIA driver's files
        #[arg(long, value_name = "DIR")]
        nvidia_root: Option<PathBuf>,
        /// table (text) or json
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Container Device Interface specs
    Cdi {
        #[command(subcommand)]
        command: CdiCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum CdiCommand {
    /// Write a CDI spec (kind nvidia.com/gpu) for this host's driver and GPUs
    Generate {
        /// Root of the NVIDIA driver's files
        #[arg(long, value_name = "DIR")]
        nvidia_root: Option<PathBuf>,
        /// Write to FILE instead of standard output
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct HookArgs {
    #[command(subcommand)]
    pub command: HookCommand,
}

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// The NVIDIA prestart hook (state on stdin)
    Nvidia {
        /// prestart injects; finish makes CDI's links and ld cache; poststart and
        /// poststop do nothing
        #[arg(value_enum)]
        stage: HookStage,
        /// Root of the NVIDIA driver's files
        #[arg(long, value_name = "DIR")]
        nvidia_root: Option<PathBuf>,
        /// finish: make symlink LINK pointing to TARGET (TARGET::LINK)
        #[arg(long = "link", value_name = "TARGET::LINK")]
        links: Vec<String>,
        /// finish: add a 64-bit library to the ld cache (SONAME::PATH)
        #[arg(long = "lib", value_name = "SONAME::PATH")]
        libs: Vec<String>,
        /// finish: add a 32-bit library to the ld cache (SONAME::PATH)
        #[arg(long = "lib32", value_name = "SONAME::PATH")]
        libs32: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HookStage {
    Prestart,
    Finish,
    Poststart,
    Poststop,
}

#[derive(Args, Debug)]
pub struct IdArg {
    /// Container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Write init's pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for rootfs on ramfs)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a session keyring (berth never creates one)
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N extra descriptors (from 3) to the container
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,
    #[command(flatten)]
    pub gpu: GpuFlags,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Accepted for runc compatibility
    #[arg(long)]
    pub no_subreaper: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json
    #[arg(short = 'f', long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Print ids only
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process of the container
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal name or number
    #[arg(default_value = "TERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it runs; succeed if it does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Where to write config.json
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// A template for a container run by an unprivileged user
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    /// JSON file with linux.resources to apply ("-" for stdin)
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with a k/m/g suffix; -1 for none)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period (-1 for none)
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPUs the container may use (0-3, 0,1)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 or 0 for none)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// Container id
    pub id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PsFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// table (ps's output) or json (the pids)
    #[arg(short = 'f', long, value_enum, default_value = "table")]
    pub format: PsFormat,
    /// Container id
    pub id: String,
    /// Arguments for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print the stats once and exit
    #[arg(long)]
    pub stats: bool,
    /// How often to print stats (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// JSON file with the process (config.json's process); COMMAND is not needed then
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Unix socket that receives the pty master with --tty
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Return once the process runs
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable)
    #[arg(short = 'e', long, value_name = "K=V")]
    pub env: Vec<String>,
    /// uid[:gid] to run as
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group (repeatable)
    #[arg(short = 'g', long, value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable)
    #[arg(short = 'c', long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux process label
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Pass N extra descriptors (from 3) to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,
    /// Exec even when the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
    /// Join this sub-cgroup of the container's cgroup
    #[arg(long, value_name = "NAME")]
    pub cgroup: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long)]
    pub no_subreaper: bool,
    /// Container id
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
