#!/usr/bin/env bash
# dockerd (Debian's docker.io 20.10) runs containers on each given runtime,
# registered with --add-runtime: tests/engines/docker.sh NAME=BINARY...
# (NAME runc means dockerd's default runc.) Its own data-root, exec-root, pidfile
# and socket under a temporary directory, no bridge or iptables, vfs storage;
# stopped and cleaned up on exit. Prints a scenario table; exits 1 on a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
begin docker docker.io "$@"
export DOCKER_HOST=unix://$T/docker.sock DOCKER_CONFIG=$T/client
DOCKER=/usr/bin/docker # Debian's client, whatever else is first on PATH

cleanup() {
  "$DOCKER" rm -f $("$DOCKER" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  stop_daemon "$T/dockerd.pid"
  kill_matching "$T/"
  restore
  rm -rf "$T"
}
trap cleanup EXIT

add=()
for spec in "$@"; do
  [ "${spec%%=*}" = runc ] || add+=(--add-runtime "$spec")
done
# GPUs: a fake NVIDIA driver root, and berth as nvidia-container-runtime-hook on
# dockerd's PATH (dockerd registers --gpus only when it finds that binary, and
# gives the hook its own environment: BERTH_NVIDIA_ROOT names the driver root).
berth_bin=
for spec in "$@"; do
  [ "${spec%%=*}" = berth ] && berth_bin=${spec#*=}
done
if [ -n "$berth_bin" ]; then
  bash "$here/../gpu/make-fake-driver" "$T/nvidia" >/dev/null
  mkdir -p "$T/bin"
  ln -s "$berth_bin" "$T/bin/nvidia-container-runtime-hook"
fi
echo '{}' > "$T/daemon.json"
PATH=$T/bin:$PATH BERTH_NVIDIA_ROOT=$T/nvidia dockerd --config-file "$T/daemon.json" --data-root "$T/data" --exec-root "$T/exec" \
  --pidfile "$T/dockerd.pid" -H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false \
  --ip-masq=false --userland-proxy=false --storage-driver vfs \
  --exec-opt native.cgroupdriver=cgroupfs "${add[@]}" > "$T/dockerd.log" 2>&1 &
retry 300 "$DOCKER" version || { tail -20 "$T/dockerd.log"; exit 1; }

make_rootfs_tar "$T/rootfs.tar"

d() { "$DOCKER" "$@"; }
STATE=$T/exec/runtime-runc/moby

for spec in "$@"; do
  RT=${spec%%=*}
  BIN=${spec#*=}
  IMG=busybox:$RT
  RUN=(d run --runtime "$RT" --network none)

  import() {
    d import "$T/rootfs.tar" "$IMG" >/dev/null
    expect "$(d images "$IMG")" "busybox"
  }
  scenario "import a rootfs tarball" "$RT" import

  run_rm() {
    local out rc=0
    out=$("${RUN[@]}" --rm "$IMG" sh -c 'echo hello from the container; exit 5') || rc=$?
    [ $rc = 5 ] || { echo "exit status $rc, wanted 5"; return 1; }
    expect "$out" "hello from the container"
  }
  scenario "run --rm: output, exit code" "$RT" run_rm

  run_it() {
    local out
    out=$(script -qec "$DOCKER run --runtime $RT --network none --rm -it $IMG sh -c 'tty; stty size'" /dev/null)
    expect "$out" "/dev/pts/0"
  }
  scenario "run -it: a terminal" "$RT" run_it

  detached() {
    "${RUN[@]}" -d --name "$RT-d" "$IMG" sleep 1000 >/dev/null
    expect "$(d inspect -f '{{.State.Status}}' "$RT-d")" running
  }
  scenario "run -d" "$RT" detached

  cid() { d inspect -f '{{.Id}}' "$RT-d"; }

  runtime_state() {
    # The named runtime manages it: its own state command knows the container
    # (dockerd 20.10 gives every runtime of the runc shim the same root).
    local st
    st=$("$BIN" --root "$STATE" state "$(cid)")
    expect "$st" "\"pid\": $(d inspect -f '{{.State.Pid}}' "$RT-d")"
  }
  scenario "runtime's own state agrees" "$RT" runtime_state

  ENGINE=("$DOCKER")
  C=$RT-d
  scenario "exec: output, status, pid ns" "$RT" cli_exec
  scenario "exec -it: a terminal" "$RT" cli_exec_tty
  scenario "top" "$RT" cli_top

  stats() {
    local out
    out=$(d stats --no-stream --format '{{.MemUsage}} pids={{.PIDs}}' "$RT-d")
    expect "$out" "pids=1" && expect "$out" "iB /"
  }
  scenario "stats" "$RT" stats

  freezer() { cat "/sys/fs/cgroup/freezer/docker/$(cid)/freezer.state" 2>/dev/null || cat "/sys/fs/cgroup/docker/$(cid)/cgroup.freeze"; }
  pause() {
    d pause "$RT-d" >/dev/null
    expect "$(d inspect -f '{{.State.Status}}' "$RT-d")" paused && expect "$(freezer)" FROZEN || return 1
    d unpause "$RT-d" >/dev/null
    expect "$(d inspect -f '{{.State.Status}}' "$RT-d")" running && expect "$(freezer)" THAWED
  }
  scenario "pause / unpause (freezer state)" "$RT" pause

  update() {
    d update --memory 64m --memory-swap 128m --pids-limit 20 "$RT-d" >/dev/null
    local out
    out=$(d exec "$RT-d" cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max)
    expect "$out" 67108864 && expect "$out" 20
  }
  scenario "update --memory --pids-limit" "$RT" update

  rm_f() {
    local pid id
    pid=$(d inspect -f '{{.State.Pid}}' "$RT-d")
    id=$(cid)
    d rm -f "$RT-d" >/dev/null
    ! kill -0 "$pid" 2>/dev/null || { echo "pid $pid still alive"; return 1; }
    [ -z "$(d ps -aq)" ] || { d ps -a; return 1; }
    [ ! -e "$STATE/$id" ] || { echo "runtime state left: $STATE/$id"; return 1; }
    [ ! -e "/sys/fs/cgroup/memory/docker/$id" ] && [ ! -e "/sys/fs/cgroup/docker/$id" ] ||
      { echo "cgroup left for $id"; return 1; }
  }
  scenario "rm -f: nothing left" "$RT" rm_f

  limits() {
    local out
    out=$("${RUN[@]}" --rm --memory 32m --pids-limit 10 "$IMG" \
      cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max)
    expect "$out" 33554432 && expect "$out" 10
  }
  scenario "--memory 32m --pids-limit 10" "$RT" limits

  read_only() {
    local out
    out=$("${RUN[@]}" --rm --read-only "$IMG" sh -c 'touch /x 2>&1; awk "\$5 == \"/\" {print \"root:\", \$6}" /proc/self/mountinfo')
    expect "$out" "Read-only file system" && expect "$out" "root: ro,"
  }
  scenario "--read-only" "$RT" read_only

  user() { expect "$("${RUN[@]}" --rm --user 1000:1000 "$IMG" id)" "uid=1000(user) gid=1000(user)"; }
  scenario "--user 1000:1000" "$RT" user

  cap_drop() {
    local out
    out=$("${RUN[@]}" --rm --cap-drop ALL "$IMG" grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status)
    [ "$(printf '%s\n' "$out" | grep -c 0000000000000000)" = 3 ] || { echo "$out"; return 1; }
  }
  scenario "--cap-drop ALL" "$RT" cap_drop

  nnp() {
    expect "$("${RUN[@]}" --rm --security-opt no-new-privileges "$IMG" grep NoNewPrivs /proc/self/status)" "NoNewPrivs:	1"
  }
  scenario "--security-opt no-new-privileges" "$RT" nnp

  bind() {
    mkdir -p "$T/vol-$RT"
    echo from-host > "$T/vol-$RT/in"
    local out
    out=$("${RUN[@]}" --rm -v "$T/vol-$RT:/data" -v "$T/vol-$RT:/ro:ro" "$IMG" \
      sh -c 'cat /data/in; echo from-container > /data/out; touch /ro/x 2>&1')
    expect "$out" from-host && expect "$out" "Read-only file system" &&
      expect "$(cat "$T/vol-$RT/out")" from-container
  }
  scenario "-v bind mounts (rw and ro)" "$RT" bind

  tmpfs() {
    local out
    out=$("${RUN[@]}" --rm --tmpfs /scratch:size=1m "$IMG" sh -c 'grep " /scratch " /proc/self/mountinfo; touch /scratch/x && echo ok')
    expect "$out" "tmpfs" && expect "$out" "size=1024k" && expect "$out" ok
  }
  scenario "--tmpfs" "$RT" tmpfs

  # stop_case NAME TRAP TIMEOUT WANT: a container whose shell runs TRAP on TERM
  # is stopped with `docker stop -t TIMEOUT`; its exit code must be WANT.
  stop_case() {
    "${RUN[@]}" -d --name "$RT-$1" "$IMG" sh -c "trap '$2' TERM; while :; do sleep 0.1; done" >/dev/null
    d stop -t "$3" "$RT-$1" >/dev/null
    local code
    code=$(d inspect -f '{{.State.ExitCode}}' "$RT-$1")
    d rm "$RT-$1" >/dev/null
    [ "$code" = "$4" ] || { echo "exit code $code, wanted $4"; return 1; }
  }
  scenario "stop: TERM honoured (exit 0)" "$RT" stop_case t "exit 0" 10 0

  gpus_all() {
    [ -n "$berth_bin" ] || { echo "needs berth as the hook"; return 1; }
    local out
    out=$("${RUN[@]}" --rm --gpus all "$IMG" nvidia-smi)
    expect "$out" "GPU 0: /dev/nvidia0 195:0 allowed" && expect "$out" "GPU 1: /dev/nvidia1 195:1 allowed" &&
      expect "$out" "CUDA Version: 12.2"
  }
  scenario "--gpus all: nvidia-smi (fake driver)" "$RT" gpus_all

  gpus_one() {
    [ -n "$berth_bin" ] || { echo "needs berth as the hook"; return 1; }
    local out
    out=$("${RUN[@]}" --rm --gpus '"device=1"' "$IMG" sh -c 'nvidia-smi; ls /dev')
    expect "$out" "GPU 1: /dev/nvidia1 195:1 allowed" || return 1
    case "$out" in *"GPU 0:"* | *"nvidia0"*) echo "GPU 0 was given: $out"; return 1 ;; esac
  }
  scenario "--gpus '\"device=1\"'" "$RT" gpus_one

  scenario "stop: TERM ignored, then KILL (137)" "$RT" stop_case k "" 1 137
done

print_table "dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) with --add-runtime"
exit $FAILED
