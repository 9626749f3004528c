# Shared by the engine tests (sourced, not run): package installs, the busybox
# rootfs and OCI image, the scenario table, and the residue check that puts the
# host back as it was (processes, mounts, cgroups, files under /run).

ENGINE_TMP=${ENGINE_TMP:-}
RESULTS=${RESULTS:-}
FAILED=0

log() { printf '  %s\n' "$*" >&2; }

# apt-get install the missing packages without starting their services (the
# engines are started by the tests, on their own sockets, never system-wide).
install_packages() {
  local need=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  echo "installing: ${need[*]}"
  local guard=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ $guard = 0 ] || rm -f /usr/sbin/policy-rc.d
}

# begin NAME PACKAGE NAME=BINARY...: checks the arguments, installs PACKAGE,
# makes the test's own directory ($T) and results file, and snapshots the host.
begin() {
  local name=$1 pkg=$2
  shift 2
  [ $# -gt 0 ] || { echo "usage: $0 NAME=BINARY..." >&2; exit 2; }
  install_packages "$pkg"
  ENGINE_TMP=$(mktemp -d "/tmp/berth-$name.XXXXXX")
  RESULTS=$ENGINE_TMP/results
  : > "$RESULTS"
  snapshot
  T=$ENGINE_TMP
}

# Scenarios docker and podman share (podman's CLI is docker's): ENGINE holds the
# engine's command line up to the verb, C names a running container whose PID 1
# is `sleep 1000`.
cli_exec() {
  local out rc=0
  out=$("${ENGINE[@]}" exec "$C" sh -c 'cat /proc/1/cmdline | tr "\0" " "; exit 4') || rc=$?
  [ $rc = 4 ] || { echo "exit status $rc, wanted 4: $out"; return 1; }
  expect "$out" "sleep 1000"
}

cli_exec_tty() {
  local out
  out=$(script -qec "${ENGINE[*]} exec -it $C tty" /dev/null)
  expect "$out" "/dev/pts/"
}

cli_top() { expect "$("${ENGINE[@]}" top "$C")" "sleep 1000"; }

# A busybox rootfs (every applet linked; root and uid 1000 known) as a tarball.
make_rootfs_tar() {
  local out=$1 dir
  dir=$(mktemp -d "$ENGINE_TMP/rootfs.XXXXXX")
  mkdir -p "$dir"/{bin,etc,proc,sys,dev,tmp,root,home/user,run}
  chmod 755 "$dir"
  chown 1000:1000 "$dir/home/user"
  chmod 1777 "$dir/tmp"
  cp /bin/busybox "$dir/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nuser:x:1000:\n' > "$dir/etc/group"
  : > "$dir/etc/hosts"
  : > "$dir/etc/resolv.conf"
  tar --numeric-owner -C "$dir" -cf "$out" .
  rm -rf "$dir"
}

# An OCI image layout tarball holding that rootfs as one layer, named NAME.
make_oci_image() {
  local out=$1 name=$2 dir
  dir=$(mktemp -d "$ENGINE_TMP/image.XXXXXX")
  make_rootfs_tar "$dir/layer.tar"
  python3 - "$dir" "$name" <<'PY'
import hashlib, json, os, sys
d, name = sys.argv[1], sys.argv[2]
os.makedirs(f"{d}/oci/blobs/sha256")
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{d}/oci/blobs/sha256/{h}", "wb").write(data)
    return {"digest": f"sha256:{h}", "size": len(data)}
layer = open(f"{d}/layer.tar", "rb").read()
diff = "sha256:" + hashlib.sha256(layer).hexdigest()
config = blob(json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [diff]},
}).encode())
manifest = blob(json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}],
}).encode())
index = {"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
    "annotations": {"io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}]}
json.dump(index, open(f"{d}/oci/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{d}/oci/oci-layout", "w"))
PY
  tar -C "$dir/oci" -cf "$out" .
  rm -rf "$dir"
}

# scenario NAME RUNTIME FUNCTION [ARGS...]: runs FUNCTION and records PASS or
# FAIL (with what it printed) for NAME under RUNTIME.
scenario() {
  local name=$1 rt=$2 out rc
  shift 2
  out=$("$@" 2>&1) && rc=0 || rc=$?
  if [ $rc = 0 ]; then
    printf '%s\t%s\tPASS\n' "$name" "$rt" >> "$RESULTS"
  else
    printf '%s\t%s\tFAIL\n' "$name" "$rt" >> "$RESULTS"
    FAILED=1
    printf '  FAIL [%s] %s:\n%s\n' "$rt" "$name" "$(printf '%s\n' "$out" | tail -n 15 | sed 's/^/    /')" >&2
  fi
}

# The table: one row per scenario, one column per runtime.
print_table() {
  local title=$1
  python3 - "$RESULTS" "$title" <<'PY'
import sys
rows, cols, res = [], [], {}
for line in open(sys.argv[1]):
    name, rt, r = line.rstrip("\n").split("\t")
    if name not in rows: rows.append(name)
    if rt not in cols: cols.append(rt)
    res[name, rt] = r
w = max(len(r) for r in rows + ["scenario"])
print(f"== {sys.argv[2]}")
print("| " + "scenario".ljust(w) + " | " + " | ".join(c.ljust(5) for c in cols) + " |")
print("|" + "-" * (w + 2) + "|" + "|".join("-" * (max(5, len(c)) + 2) for c in cols) + "|")
for r in rows:
    print("| " + r.ljust(w) + " | " + " | ".join(res.get((r, c), "-").ljust(max(5, len(c))) for c in cols) + " |")
PY
}

# expect TEXT FIXED: TEXT contains FIXED.
expect() {
  case "$1" in
    *"$2"*) return 0 ;;
  esac
  printf 'expected %q in:\n%s\n' "$2" "$1"
  return 1
}

# retry N CMD...: CMD succeeds within N tenths of a second.
retry() {
  local n=$1 i
  shift
  for ((i = 0; i < n; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$@"
}

# --- residue: what the test must leave as it found it -----------------------

# berth's own test cgroups (/berth/...) belong to other tests, not to the engines.
cgroup_dirs() { find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | grep -v '/berth\(/\|$\)' | sort; }
mount_points() { awk '{print $5}' /proc/self/mountinfo | sort; }
run_entries() { find /run -maxdepth 2 2>/dev/null | sort -u; }

snapshot() {
  cgroup_dirs > "$ENGINE_TMP/cgroups.before"
  mount_points > "$ENGINE_TMP/mounts.before"
  run_entries > "$ENGINE_TMP/run.before"
  ls -A /sys/fs/cgroup | sort > "$ENGINE_TMP/cgroup-top.before"
}

# Kills every process in cgroups made since the snapshot, unmounts new mounts,
# removes new cgroups (deepest first), plain directories an engine made under
# /sys/fs/cgroup, and new entries under /run. Prints what it had to clean.
restore() {
  local d m e
  cgroup_dirs | comm -13 "$ENGINE_TMP/cgroups.before" - > "$ENGINE_TMP/cgroups.new"
  while read -r d; do
    [ -f "$d/cgroup.procs" ] && xargs -r kill -9 < "$d/cgroup.procs" 2>/dev/null
  done < "$ENGINE_TMP/cgroups.new"
  mount_points | comm -13 "$ENGINE_TMP/mounts.before" - | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null && echo "unmounted $m"
  done
  sort -r "$ENGINE_TMP/cgroups.new" | while read -r d; do
    [ -f "$d/cgroup.procs" ] || continue # a plain directory: removed below
    [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2>/dev/null
    { rmdir "$d" 2>/dev/null || { sleep 0.2; rmdir "$d" 2>/dev/null; }; } && echo "cleaned up cgroup $d" || echo "cannot remove cgroup $d"
  done
  ls -A /sys/fs/cgroup | sort | comm -13 "$ENGINE_TMP/cgroup-top.before" - | while read -r e; do
    mountpoint -q "/sys/fs/cgroup/$e" || { rm -rf "/sys/fs/cgroup/${e:?}" && echo "cleaned up /sys/fs/cgroup/$e"; }
  done
  run_entries | comm -13 "$ENGINE_TMP/run.before" - | sort -r | while read -r e; do
    case "$e" in
      /run/containerd* | /run/docker* | /run/libpod* | /run/containers* | /run/crun* | /run/runc* | /run/netns* | /run/berth*) rm -rf "$e" && echo "cleaned up $e" ;;
      *) echo "left for its owner: $e" ;;
    esac
  done
}

# stop_daemon PIDFILE: TERM, then KILL after 10 s, the daemon and its children.
stop_daemon() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
}

# kill_matching PATTERN: KILL processes whose command line mentions PATTERN
# (the engines' shims and conmon, found by the test's own directory).
kill_matching() {
  pkill -KILL -f -- "$1" 2>/dev/null || true
}
