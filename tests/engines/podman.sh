#!/usr/bin/env bash
# podman (Debian's 4.3) runs containers with --runtime set to each given binary:
# tests/engines/podman.sh NAME=BINARY...
# Its own containers.conf, storage.conf, --root and --runroot under a temporary
# directory, the cgroupfs manager and the file events backend; cleaned up on exit
# (podman makes plain directories under /sys/fs/cgroup for controllers the host
# does not mount: removed too). Prints a scenario table; exits 1 on a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
begin podman podman "$@"

cleanup() {
  p rm -af -t 0 >/dev/null 2>&1 || true
  kill_matching "$T/"
  restore
  rm -rf "$T"
}
trap cleanup EXIT

# podman asks for rlimits above this host's hard limits by default (nofile
# 1048576, and nproc at its own hard limit): without CAP_SYS_RESOURCE no runtime
# may raise them, so this containers.conf asks for lower ones, which any process
# may set (the containers see them: checked below).
cat > "$T/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/tmp"
volume_path = "$T/volumes"
static_dir = "$T/storage/libpod"
[network]
network_config_dir = "$T/networks"
EOF
cat > "$T/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$T/storage"
runroot = "$T/runroot"
EOF
printf 'unqualified-search-registries = []\n' > "$T/registries.conf"
export CONTAINERS_CONF=$T/containers.conf CONTAINERS_STORAGE_CONF=$T/storage.conf \
  CONTAINERS_REGISTRIES_CONF=$T/registries.conf XDG_CONFIG_HOME=$T/config

make_rootfs_tar "$T/rootfs.tar"

for spec in "$@"; do
  RT=${spec%%=*}
  BIN=${spec#*=}
  IMG=localhost/busybox:$RT
  p() { podman --runtime "$BIN" "$@"; }

  import() {
    p import "$T/rootfs.tar" "$IMG" >/dev/null
    expect "$(p images "$IMG")" "busybox"
  }
  scenario "import a rootfs tarball" "$RT" import

  run_rm() {
    local out rc=0
    out=$(p run --rm "$IMG" sh -c 'echo hello from the container; echo "nofile=$(ulimit -n) nproc=$(ulimit -u)"; exit 6') || rc=$?
    [ $rc = 6 ] || { echo "exit status $rc, wanted 6: $out"; return 1; }
    expect "$out" "hello from the container" && expect "$out" "nofile=1024 nproc=1000"
  }
  scenario "run --rm: output, exit code, ulimits" "$RT" run_rm

  run_it() {
    local out
    # podman 4.3 attaches after start: output of a process that ends at once
    # can be lost, with any runtime, so the process waits for it a moment.
    out=$(script -qec "podman --runtime $BIN run --rm -it $IMG sh -c 'sleep 0.5; tty; stty size'" /dev/null)
    expect "$out" "/dev/pts/0"
  }
  scenario "run -it: a terminal" "$RT" run_it

  detached() {
    p run -d --name "$RT-d" "$IMG" sleep 1000 >/dev/null
    expect "$(p inspect -f '{{.State.Status}}' "$RT-d")" running
  }
  scenario "run -d" "$RT" detached

  runtime_state() {
    # podman (as root) leaves the runtime at its default --root: the runtime's
    # own state command there knows the container, with podman's pid.
    local st
    st=$("$BIN" state "$(p inspect -f '{{.Id}}' "$RT-d")")
    expect "$st" "\"pid\": $(p inspect -f '{{.State.Pid}}' "$RT-d")"
  }
  scenario "runtime's own state agrees" "$RT" runtime_state

  ENGINE=(podman --runtime "$BIN")
  C=$RT-d
  scenario "exec: output, status, pid ns" "$RT" cli_exec
  scenario "exec -it: a terminal" "$RT" cli_exec_tty
  scenario "top" "$RT" cli_top

  stop() {
    p stop -t 1 "$RT-d" >/dev/null
    local code
    code=$(p inspect -f '{{.State.ExitCode}} {{.State.Status}}' "$RT-d")
    [ "$code" = "137 exited" ] || { echo "state $code, wanted 137 exited"; return 1; }
  }
  scenario "stop: TERM ignored, then KILL (137)" "$RT" stop

  rm_() {
    local id out
    id=$(p inspect -f '{{.Id}}' "$RT-d")
    p rm "$RT-d" >/dev/null
    [ -z "$(p ps -aq)" ] || { p ps -a; return 1; }
    out=$("$BIN" state "$id" 2>&1) && { echo "the runtime still knows $id"; return 1; }
    expect "$out" "does not exist"
  }
  scenario "rm: nothing left" "$RT" rm_
done

print_table "podman $(podman --version | awk '{print $3}')"
exit $FAILED
