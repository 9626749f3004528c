#!/usr/bin/env bash
# tests/gpu/real-gpu.sh [BERTH]: the GPU checks of the test suite, against this
# host's real NVIDIA driver (for hosts with GPUs; skipped when /dev/nvidiactl is
# absent; BERTH_NVIDIA_ROOT names another driver root). Run as root. Checks inside busybox containers: the GPU nodes and
# nvidia-smi, NVIDIA_VISIBLE_DEVICES=0 giving GPU 0 only, libcuda.so.1 in the
# container's ld cache, the driver's libraries mounted read-only, a CDI spec
# that validates and gives the same GPUs, and a requirement the driver cannot
# meet failing create.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
berth=${1:-$here/../../target/$(rustc -vV | sed -n 's/^host: //p')/release/berth}
root=${BERTH_NVIDIA_ROOT:-/}
if [ ! -e "$root/dev/nvidiactl" ]; then
  echo "skip: /dev/nvidiactl is absent (no NVIDIA driver on this host)"
  exit 0
fi
work=$(mktemp -d /tmp/berth-real-gpu.XXXXXX)
trap 'for c in $("$berth" --root "$work/state" list -q 2>/dev/null); do "$berth" --root "$work/state" delete --force "$c"; done; rm -rf "$work"' EXIT
fail=0
check() { # check NAME EXPECTED OUTPUT
  case "$3" in *"$2"*) echo "PASS $1" ;; *) echo "FAIL $1: wanted '$2' in: $3"; fail=1 ;; esac
}
"$berth" gpu info
"$here/../../scripts/make-bundle" "$work/b" true >/dev/null
mkdir -p "$work/b/rootfs/lib64" "$work/b/rootfs/lib/x86_64-linux-gnu" "$work/b/rootfs/sbin"
cp /lib64/ld-linux-x86-64.so.2 "$work/b/rootfs/lib64/"
cp /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libm.so.6 "$work/b/rootfs/lib/x86_64-linux-gnu/"
cp /sbin/ldconfig "$work/b/rootfs/sbin/"
set_args() {
  python3 - "$work/b/config.json" "$@" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["sh", "-c", sys.argv[2]]
c["process"]["env"] = [e for e in c["process"]["env"] if not e.startswith("NVIDIA_")] + sys.argv[3:]
json.dump(c, open(sys.argv[1], "w"))
PY
}
run() { "$berth" --root "$work/state" run --bundle "$work/b" "$@" "c$RANDOM" 2>&1 || true; }

set_args 'nvidia-smi -L; ls /dev/nvidia*; ldconfig -p | grep libcuda.so.1; grep libcuda /proc/self/mountinfo'
out=$(run --gpus all)
check "nvidia-smi -L lists GPU 0" "GPU 0:" "$out"
check "/dev/nvidia0 injected" "/dev/nvidia0" "$out"
check "libcuda.so.1 in the ld cache" "libcuda.so.1 (libc6,x86-64)" "$out"
check "libcuda mounted read-only" " ro,nosuid,nodev" "$out"

set_args 'ls /dev/nvidia*' NVIDIA_VISIBLE_DEVICES=0
out=$(run)
check "NVIDIA_VISIBLE_DEVICES=0 gives /dev/nvidia0" "/dev/nvidia0" "$out"
case "$out" in *"/dev/nvidia1"*) echo "FAIL NVIDIA_VISIBLE_DEVICES=0 gave /dev/nvidia1"; fail=1 ;; esac

mkdir -p "$work/cdi"
"$berth" gpu cdi generate --output "$work/cdi/nvidia.json"
if python3 "$here/validate-cdi" "$work/cdi/nvidia.json"; then echo "PASS CDI spec validates"; else echo "FAIL CDI spec"; fail=1; fi
set_args 'nvidia-smi -L'
out=$(run --device nvidia.com/gpu=all --cdi-spec-dir "$work/cdi")
check "CDI nvidia.com/gpu=all: nvidia-smi -L" "GPU 0:" "$out"

set_args true NVIDIA_VISIBLE_DEVICES=all NVIDIA_REQUIRE_CUDA=cuda>=99.0
out=$(run)
check "unmet requirement fails create" "is not met by this host" "$out"
exit $fail
