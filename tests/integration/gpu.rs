//! NVIDIA GPUs on a host without one: a fake driver root (tests/gpu/make-fake-driver:
//! mknod'd nodes, real ELF libraries under the driver's sonames, an ld cache, a
//! stand-in nvidia-smi) injected by create itself, by the prestart hook (as
//! `nvidia-container-runtime-hook`, with berth and with runc), and through CDI.
//! Everything is checked inside the container: node numbers, whether the device
//! cgroup lets a node open (EPERM when it does not), the loader finding
//! libcuda.so.1 through the ld cache, read-only mounts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::json;

use crate::common::*;

const VERSION: &str = "535.104.05";

/// The fake driver root for (kernel version, library version), built once per
/// test run under target/fixtures (reused while its sources are unchanged).
fn fake_root(kernel: &str, libs: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join(format!("target/fixtures/nvidia-{kernel}-{libs}"));
    let stamp = format!(
        "{}{}{}{}{}",
        include_str!("../gpu/make-fake-driver"),
        include_str!("../gpu/fake/libcuda.c"),
        include_str!("../gpu/fake/nvidia-smi.c"),
        include_str!("../gpu/fake/gpucount.c"),
        include_str!("../gpu/fake/libnvidia-ml.c"),
    );
    let stamp = format!(
        "{:x}",
        stamp.len() * 31 + stamp.bytes().map(usize::from).sum::<usize>()
    );
    if std::fs::read_to_string(root.join(".stamp")).ok().as_deref() == Some(stamp.as_str()) {
        return root;
    }
    let st = Command::new("bash")
        .arg(manifest.join("tests/gpu/make-fake-driver"))
        .arg(&root)
        .arg(kernel)
        .env("FAKE_LIB_VERSION", libs)
        .status()
        .unwrap();
    assert!(st.success(), "make-fake-driver {}", root.display());
    std::fs::write(root.join(".stamp"), stamp).unwrap();
    root
}

fn driver() -> PathBuf {
    fake_root(VERSION, VERSION)
}

/// A busybox bundle with glibc's loader, libc, ldconfig and the gpucount program
/// (dlopens libcuda.so.1 and counts devices), running `script`.
fn gpu_bundle(script: &str) -> Bundle {
    let b = Bundle::new(&["sh", "-c", script]);
    let r = b.rootfs();
    for (src, dst) in [
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libc.so.6",
        ),
        ("/sbin/ldconfig", "sbin/ldconfig"),
    ] {
        std::fs::create_dir_all(r.join(dst).parent().unwrap()).unwrap();
        std::fs::copy(src, r.join(dst)).unwrap();
    }
    std::fs::copy(driver().join("gpucount"), r.join("gpucount")).unwrap();
    b
}

/// What every GPU test prints from inside: nodes (hex major:minor), nvidia-smi,
/// gpucount, the ld cache, the library mount's options.
const PROBE: &str = "for n in /dev/nvidia*; do [ -e \"$n\" ] && stat -c 'node %n %t:%T' \"$n\"; done; \
    nvidia-smi; /gpucount; ldconfig -p | grep -E 'libcuda|libnvidia-ml'; \
    grep -E ' /usr/lib/x86_64-linux-gnu/libcuda.so.[0-9.]+ ' /proc/self/mountinfo | cut -d' ' -f5,6; \
    ls /lib/firmware/nvidia/*/ 2>/dev/null; true";

fn run_gpu(b: &Bundle, id: &str, extra: &[&str]) -> Out {
    let bundle = b.dir.to_str().unwrap().to_string();
    let mut args = vec!["run", "--bundle", bundle.as_str()];
    args.extend_from_slice(extra);
    args.push(id);
    b.berth(&args)
}

#[test]
fn gpus_all_injected_by_create() {
    let root = driver();
    let b = gpu_bundle(&format!("{PROBE}; head -c0 /extra-gpu 2>&1; true"));
    // A GPU node that was not injected: the device cgroup must refuse it.
    let st = Command::new("mknod")
        .arg(b.rootfs().join("extra-gpu"))
        .args(["c", "195", "7"])
        .status()
        .unwrap();
    assert!(st.success());
    let out = run_gpu(
        &b,
        "all",
        &["--gpus", "all", "--nvidia-root", root.to_str().unwrap()],
    );
    let o = out.ok();
    for want in [
        "node /dev/nvidia0 c3:0",
        "node /dev/nvidia1 c3:1",
        "node /dev/nvidiactl c3:ff",
        "node /dev/nvidia-uvm 1fc:0",
        "node /dev/nvidia-uvm-tools 1fc:1",
        "CUDA Version: 12.2",
        "GPU 0: /dev/nvidia0 195:0 allowed",
        "GPU 1: /dev/nvidia1 195:1 allowed",
        "cuda devices: 2",
        "libcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "libnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05 ro,nosuid,nodev",
        "gsp_tu10x.bin",
        "/extra-gpu: Operation not permitted",
    ] {
        assert!(o.contains(want), "missing {want:?} in:\n{o}");
    }
    // display was not asked for: no modeset node.
    assert!(!o.contains("nvidia-modeset"), "{o}");
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}

#[test]
fn visible_devices_select_gpus() {
    let root = driver();
    let root_s = root.to_str().unwrap();
    for (value, gpus, count) in [
        ("1", vec![1], 1),
        ("GPU-00000001-fa6e", vec![1], 1),
        ("0,1", vec![0, 1], 2),
        ("none", vec![], 0),
    ] {
        let mut b = gpu_bundle(PROBE);
        b.edit(|c| {
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!(format!("NVIDIA_VISIBLE_DEVICES={value}")))
        });
        let out = run_gpu(&b, "sel", &["--nvidia-root", root_s]);
        let o = out.ok();
        for g in 0..2 {
            let line = format!("GPU {g}: /dev/nvidia{g} 195:{g} allowed");
            assert_eq!(
                o.contains(&line),
                gpus.contains(&g),
                "{value}: {line} in:\n{o}"
            );
        }
        assert!(
            o.contains(&format!("cuda devices: {count}")),
            "{value}:\n{o}"
        );
        // The driver itself is there even with no GPU.
        assert!(o.contains("node /dev/nvidiactl c3:ff"), "{value}:\n{o}");
        assert!(o.contains("libcuda.so.1 (libc6,x86-64)"), "{value}:\n{o}");
    }
    // void (and no variable at all): nothing is injected.
    let mut b = gpu_bundle(PROBE);
    b.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("NVIDIA_VISIBLE_DEVICES=void"))
    });
    let out = run_gpu(&b, "void", &["--nvidia-root", root_s]);
    let o = out.ok();
    assert!(!o.contains("node /dev/nvidia"), "{o}");
    assert!(o.contains("dlopen: libcuda.so.1"), "{o}");
    // A CUDA image's own NVIDIA_VISIBLE_DEVICES=all on a host with no driver (this
    // one, at /): it runs without GPUs, as under runc.
    if !Path::new("/proc/driver/nvidia/version").exists() {
        let mut b = gpu_bundle(PROBE);
        b.edit(|c| {
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("NVIDIA_VISIBLE_DEVICES=all"))
        });
        let out = b
            .cmd(&["run", "--bundle", b.dir.to_str().unwrap(), "cuda-image"])
            .env_remove("BERTH_NVIDIA_ROOT")
            .output()
            .unwrap();
        let out: Out = out.into();
        assert!(!out.ok().contains("node /dev/nvidia"), "{}", out.stdout);
    }
}

#[test]
fn gpu_errors_fail_create_cleanly() {
    let good = driver();
    let skewed = fake_root(VERSION, "535.86.05");
    let cases: Vec<(Vec<&str>, PathBuf, &str)> =
        vec![
        (vec!["NVIDIA_VISIBLE_DEVICES=5"], good.clone(), "NVIDIA_VISIBLE_DEVICES: no GPU 5"),
        (
            vec!["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_REQUIRE_CUDA=cuda>=13.0"],
            good.clone(),
            "NVIDIA_REQUIRE_CUDA=cuda>=13.0 is not met by this host (driver 535.104.05, CUDA 12.2)",
        ),
        (
            vec!["NVIDIA_VISIBLE_DEVICES=all", "CUDA_VERSION=12.4.1"],
            good.clone(),
            "CUDA_VERSION=cuda>=12.4 is not met",
        ),
        (
            vec!["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,warp"],
            good.clone(),
            "NVIDIA_DRIVER_CAPABILITIES: unknown capability \"warp\"",
        ),
        (
            vec!["NVIDIA_VISIBLE_DEVICES=all"],
            PathBuf::from("/nonexistent-driver-root"),
            "no NVIDIA driver under /nonexistent-driver-root",
        ),
        (
            vec!["NVIDIA_VISIBLE_DEVICES=all"],
            skewed,
            "library version 535.86.05 differs from the kernel driver's 535.104.05",
        ),
    ];
    for (env, root, want) in cases {
        let mut b = gpu_bundle("true");
        b.edit(|c| {
            let e = c["process"]["env"].as_array_mut().unwrap();
            e.extend(env.iter().map(|v| json!(v)));
        });
        let bundle = b.dir.to_str().unwrap().to_string();
        let out = b.berth(&[
            "create",
            "--bundle",
            &bundle,
            "--nvidia-root",
            root.to_str().unwrap(),
            "bad",
        ]);
        assert_eq!(out.code, 1, "{env:?}: {out:?}");
        assert!(
            out.stderr.contains(want),
            "{env:?}: want {want:?}, got {}",
            out.stderr
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert!(b.residue().is_empty(), "{env:?}: {:?}", b.residue());
    }
}

/// The prestart hook as dockerd adds it: `nvidia-container-runtime-hook
/// prestart` through a symlink to berth, the driver root in the hook's env.
fn hook_bundle(hook_path: &Path, args: &[&str], root: &Path) -> Bundle {
    let mut b = gpu_bundle(PROBE);
    let hook = json!({"path": hook_path, "args": args,
        "env": [format!("BERTH_NVIDIA_ROOT={}", root.display())]});
    b.edit(|c| {
        c["hooks"] = json!({ "prestart": [hook] });
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("NVIDIA_VISIBLE_DEVICES=0"));
    });
    b
}

fn assert_gpu0_only(o: &str) {
    assert!(o.contains("GPU 0: /dev/nvidia0 195:0 allowed"), "{o}");
    assert!(!o.contains("GPU 1:"), "{o}");
    assert!(o.contains("cuda devices: 1"), "{o}");
    assert!(o.contains("libcuda.so.1 (libc6,x86-64)"), "{o}");
}

#[test]
fn prestart_hook_through_the_symlink_with_berth_and_runc() {
    let root = driver();
    let links = tempdir("hook");
    let link = links.join("nvidia-container-runtime-hook");
    std::os::unix::fs::symlink(berth_bin(), &link).unwrap();
    let b = hook_bundle(&link, &["nvidia-container-runtime-hook", "prestart"], &root);
    assert_gpu0_only(run_gpu(&b, "hook", &[]).ok());
    assert!(b.residue().is_empty(), "{:?}", b.residue());
    // `berth hook nvidia prestart` is the same hook.
    let b = hook_bundle(
        Path::new(&berth_bin()),
        &["berth", "hook", "nvidia", "prestart"],
        &root,
    );
    assert_gpu0_only(run_gpu(&b, "hook2", &[]).ok());
    // runc runs the same hook (the toolkit's place, with berth in it).
    if let Ok(runc) = which("runc") {
        let b = hook_bundle(&link, &["nvidia-container-runtime-hook", "prestart"], &root);
        let out: Out = Command::new(runc)
            .arg("--root")
            .arg(&b.root)
            .args(["run", "--bundle"])
            .arg(&b.dir)
            .arg("runc-hook")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
            .into();
        assert_gpu0_only(out.ok());
    }
    let _ = std::fs::remove_dir_all(links);
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-gpu-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn cdi_generate_validate_and_apply() {
    let root = driver();
    let dir = tempdir("cdi");
    let spec = dir.join("nvidia.json");
    let b = gpu_bundle(PROBE);
    b.berth(&[
        "gpu",
        "cdi",
        "generate",
        "--nvidia-root",
        root.to_str().unwrap(),
        "--output",
        spec.to_str().unwrap(),
    ])
    .ok();
    let validate = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gpu/validate-cdi");
    let out: Out = Command::new(&validate).arg(&spec).output().unwrap().into();
    assert_eq!(
        out.code, 0,
        "CDI spec invalid: {} {}",
        out.stdout, out.stderr
    );
    let d = dir.to_str().unwrap();
    // By flag: GPU 1 only, with the driver.
    let out = run_gpu(
        &b,
        "cdi1",
        &["--device", "nvidia.com/gpu=1", "--cdi-spec-dir", d],
    );
    let o = out.ok();
    assert!(
        o.contains("GPU 1: /dev/nvidia1 195:1 allowed") && !o.contains("GPU 0:"),
        "{o}"
    );
    assert!(o.contains("cuda devices: 1"), "{o}");
    assert!(o.contains("libcuda.so.1 (libc6,x86-64)"), "{o}");
    assert!(
        o.contains("/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05 ro,nosuid,nodev"),
        "{o}"
    );
    // By annotation, as Kubernetes device plugins ask: GPU 0.
    let mut b = gpu_bundle(PROBE);
    b.edit(|c| c["annotations"] = json!({"cdi.k8s.io/gpu": "nvidia.com/gpu=0"}));
    let out = run_gpu(&b, "cdi0", &["--cdi-spec-dir", d]);
    let o = out.ok();
    assert!(
        o.contains("GPU 0: /dev/nvidia0 195:0 allowed") && !o.contains("GPU 1:"),
        "{o}"
    );
    // An unknown device fails create cleanly.
    let out = run_gpu(
        &b,
        "cdi9",
        &["--device", "nvidia.com/gpu=9", "--cdi-spec-dir", d],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("unresolvable CDI device nvidia.com/gpu=9"),
        "{}",
        out.stderr
    );
    assert!(b.residue().is_empty(), "{:?}", b.residue());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn gpu_info_and_rules_kept_across_update() {
    let root = driver();
    let b = gpu_bundle("sleep 30");
    let info = b.berth(&["gpu", "info", "--nvidia-root", root.to_str().unwrap()]);
    let i = info.ok();
    assert!(
        i.contains("driver version: 535.104.05") && i.contains("CUDA version:   12.2"),
        "{i}"
    );
    assert!(i.contains("GPU 1: Fake GPU 1 (GPU-00000001-fa6e-4e1d-9a1b-000000000001, bus 0000:02:00.0, /dev/nvidia1)"), "{i}");
    let bundle = b.dir.to_str().unwrap().to_string();
    b.berth(&[
        "create",
        "--bundle",
        &bundle,
        "--gpus",
        "all",
        "--nvidia-root",
        root.to_str().unwrap(),
        "upd",
    ])
    .ok();
    b.berth(&["start", "upd"]).ok();
    b.berth(&["update", "--memory", "64m", "--pids-limit", "50", "upd"])
        .ok();
    let out = b.berth(&["exec", "upd", "nvidia-smi"]);
    let o = out.ok();
    assert!(o.contains("GPU 0: /dev/nvidia0 195:0 allowed"), "{o}");
    assert!(o.contains("GPU 1: /dev/nvidia1 195:1 allowed"), "{o}");
    b.berth(&["delete", "--force", "upd"]).ok();
    assert!(b.residue().is_empty(), "{:?}", b.residue());
}
