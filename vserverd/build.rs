//! Builds `vtools/vtool.c` (vreboot, vhalt, vstatus: the tools root inside a vserver uses to
//! reach the daemon through its control socket) into a static, free-standing binary that the
//! daemon embeds and places read-only in each vserver.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from("vtools/vtool.c");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("vtool");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-Os",
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-pie",
            "-no-pie",
            "-fno-builtin",
            "-Wall",
            "-Wl,--build-id=none",
            "-Wl,-z,noexecstack",
            "-s",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} for {}: {e}", src.display()));
    assert!(status.success(), "building {} with {cc} failed ({status})", src.display());
}
