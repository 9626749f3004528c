#!/usr/bin/env bash
# containerd (Debian's 1.6) runs containers through its runc shim with each given
# runtime as the shim's binary: tests/engines/containerd.sh NAME=BINARY...
# Its own config, root, state and socket under a temporary directory; stopped and
# cleaned up on exit. Prints a scenario table; exits 1 if any scenario failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
begin containerd containerd "$@"
SOCK=$T/containerd.sock
NS=berthtest
IMG=docker.io/library/busybox:berth

cleanup() {
  local c
  for c in $(ctr -a "$SOCK" -n $NS task ls -q 2>/dev/null); do
    ctr -a "$SOCK" -n $NS task kill -s KILL "$c" >/dev/null 2>&1 || true
  done
  stop_daemon "$T/containerd.pid"
  kill_matching "$SOCK"
  restore
  rm -rf "$T"
}
trap cleanup EXIT

cat > "$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
EOF
containerd --config "$T/config.toml" > "$T/containerd.log" 2>&1 &
echo $! > "$T/containerd.pid"
retry 100 ctr -a "$SOCK" version || { tail -20 "$T/containerd.log"; exit 1; }

make_oci_image "$T/busybox.tar" "$IMG"
ctr -a "$SOCK" -n $NS image import "$T/busybox.tar" >/dev/null

# c ARGS: ctr on the test's socket and namespace.
c() { ctr -a "$SOCK" -n $NS "$@"; }

for spec in "$@"; do
  RT=${spec%%=*}
  BIN=${spec#*=}
  ROOT=$T/runtime-$RT
  RUN=(c run --runc-binary "$BIN" --runc-root "$ROOT")

  run_output() {
    local out
    out=$("${RUN[@]}" --rm "$IMG" "$RT-hello" echo hello from the container)
    expect "$out" "hello from the container"
  }
  scenario "run --rm: output" "$RT" run_output

  exit_code() {
    local rc=0
    "${RUN[@]}" --rm "$IMG" "$RT-exit" sh -c 'exit 7' || rc=$?
    [ $rc = 7 ] || { echo "exit status $rc, wanted 7"; return 1; }
  }
  scenario "run --rm: exit code 7" "$RT" exit_code

  detached() {
    "${RUN[@]}" -d "$IMG" "$RT-d" sh -c 'trap "exit 42" TERM; sleep 1000 & wait' >/dev/null
    local ls
    ls=$(c task ls)
    expect "$ls" "RUNNING"
  }
  scenario "run -d: task RUNNING" "$RT" detached

  task_pid() { c task ls | awk -v id="$RT-d" '$1 == id {print $2}'; }

  runtime_state() {
    # The runtime named is the one managing the container: its own state command
    # (on the shim's --root) knows it, with the task's pid.
    local st pid
    st=$("$BIN" --root "$ROOT/$NS" state "$RT-d")
    pid=$(task_pid)
    expect "$st" "\"pid\": $pid" && expect "$st" '"status": "running"'
  }
  scenario "runtime's own state agrees" "$RT" runtime_state

  task_exec() {
    local out rc=0
    out=$(c task exec --exec-id e1 "$RT-d" sh -c 'cat /proc/1/cmdline | tr "\0" " "; exit 3') || rc=$?
    [ $rc = 3 ] || { echo "exec exit status $rc, wanted 3 ($out)"; return 1; }
    expect "$out" "trap"
  }
  scenario "task exec: output, status, pid ns" "$RT" task_exec

  exec_tty() {
    local out
    out=$(script -qec "ctr -a $SOCK -n $NS task exec -t --exec-id e2 $RT-d sh -c 'test -t 0 && tty'" /dev/null)
    expect "$out" "/dev/pts/"
  }
  scenario "task exec -t: a terminal" "$RT" exec_tty

  task_ps() {
    local out pid
    out=$(c task ps "$RT-d")
    pid=$(task_pid)
    expect "$out" "$pid"
  }
  scenario "task ps" "$RT" task_ps

  freezer() { cat "/sys/fs/cgroup/freezer/$NS/$RT-d/freezer.state" 2>/dev/null || cat "/sys/fs/cgroup/$NS/$RT-d/cgroup.freeze"; }
  pause_resume() {
    c task pause "$RT-d"
    expect "$(c task ls)" "PAUSED" && expect "$(freezer)" "FROZEN" || return 1
    c task resume "$RT-d"
    expect "$(c task ls)" "RUNNING" && expect "$(freezer)" "THAWED"
  }
  scenario "pause / resume (freezer state)" "$RT" pause_resume

  metrics() {
    local out
    out=$(c task metrics "$RT-d")
    expect "$out" "memory.usage_in_bytes" && expect "$out" "pids.current"
  }
  scenario "task metrics" "$RT" metrics

  kill_task() {
    local pid
    pid=$(task_pid)
    c task kill -s TERM "$RT-d"
    retry 50 sh -c "ctr -a $SOCK -n $NS task ls | grep -q '$RT-d.*STOPPED'"
    ! kill -0 "$pid" 2>/dev/null || { echo "pid $pid still alive"; return 1; }
    expect "$(c task delete "$RT-d" 2>&1)" "42"
  }
  scenario "task kill TERM: STOPPED, status 42" "$RT" kill_task

  delete_all() {
    c container delete "$RT-d"
    [ -z "$(c container ls -q)" ] || { c container ls; return 1; }
    [ ! -e "$ROOT/$NS/$RT-d" ] || { echo "runtime state left: $ROOT/$NS/$RT-d"; return 1; }
    [ ! -e "/sys/fs/cgroup/memory/$NS/$RT-d" ] && [ ! -e "/sys/fs/cgroup/$NS/$RT-d" ] ||
      { echo "cgroup left for $RT-d"; return 1; }
  }
  scenario "task + container delete: nothing left" "$RT" delete_all

  run_tty() {
    local out
    out=$(script -qec "ctr -a $SOCK -n $NS run --runc-binary $BIN --runc-root $ROOT --rm -t $IMG $RT-tty sh -c 'test -t 0 && tty && stty size'" /dev/null)
    expect "$out" "/dev/pts/0"
  }
  scenario "run -t: a terminal" "$RT" run_tty

  broken_config() {
    # A bind mount whose source does not exist: create fails, and the runtime's
    # own message reaches the user through the shim (read from its JSON log).
    local out rc=0 want
    out=$("${RUN[@]}" --rm --mount "type=bind,src=$T/no-such-dir,dst=/x,options=rbind" "$IMG" "$RT-broken" true 2>&1) || rc=$?
    c container delete "$RT-broken" >/dev/null 2>&1 || true
    [ $rc != 0 ] || { echo "run succeeded"; return 1; }
    case $RT in
      berth) want="bind source $T/no-such-dir" ;;
      *) want="no such file or directory" ;;
    esac
    expect "$out" "$want"
  }
  scenario "broken config: runtime's error shown" "$RT" broken_config
done

print_table "containerd $(containerd --version | awk '{print $3}') with the runc shim"
exit $FAILED
