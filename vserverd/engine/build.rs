//! Compiles the seccomp denylist (src/seccomp/rules.rs) to BPF at build time with libseccomp,
//! once for each kind of context (the default, `nest`, `lock`), so that building a context costs
//! no compile and the binaries need no libseccomp at run time; and builds the free-standing C
//! programs in `c/` (pid 1 of rc-style contexts, the tools for root inside, the serving monitor)
//! into static binaries that the engine and the daemon embed.

use std::io::{Read, Seek};
use std::path::PathBuf;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

#[allow(dead_code)]
mod rules {
    include!("src/seccomp/rules.rs");
}

fn arches() -> Vec<ScmpArch> {
    match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        // Every ABI an x86_64 process can call the kernel through: native, i386 and x32.
        Ok("x86_64") => vec![ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32],
        Ok("aarch64") => vec![ScmpArch::Aarch64, ScmpArch::Arm],
        Ok(other) => panic!("no seccomp architecture list for target {other}"),
        Err(_) => vec![ScmpArch::native()],
    }
}

/// The three filters: the default refuses user namespaces, `nest` allows them, `lock` refuses
/// every new namespace and every mount.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Nest,
    Lock,
}

fn compile(kind: Kind) -> Vec<u8> {
    let lock = kind == Kind::Lock;
    let eperm = ScmpAction::Errno(libc_eperm());
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).expect("seccomp context");
    let all = arches();
    // The native arch of the build host is in a new context already; the filter must cover
    // exactly the target's ABIs.
    let native = ScmpArch::native();
    if !all.contains(&native) {
        ctx.remove_arch(native).expect("remove build arch");
    }
    for arch in &all {
        if *arch != native {
            ctx.add_arch(*arch).expect("add arch");
        }
    }
    ctx.set_ctl_nnp(false).expect("nnp");

    let mut names: Vec<&str> = rules::ALWAYS_DENIED.to_vec();
    if lock {
        names.extend_from_slice(rules::LOCK_DENIED);
    }
    for name in names {
        // A name an architecture lacks (umount on x86_64) is skipped there by libseccomp;
        // a name no architecture knows is a typo in the list.
        let sys = ScmpSyscall::from_name(name).unwrap_or_else(|_| panic!("unknown syscall {name}"));
        ctx.add_rule(eperm, sys).unwrap_or_else(|e| panic!("rule {name}: {e}"));
    }
    let ioctl = ScmpSyscall::from_name("ioctl").expect("ioctl");
    for (name, request) in rules::DENIED_IOCTLS {
        let cmp = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), *request);
        ctx.add_rule_conditional(eperm, ioctl, &[cmp]).unwrap_or_else(|e| panic!("ioctl {name}: {e}"));
    }
    // The flags `clone` may not carry (its first argument on every architecture listed above):
    // with `lock` every namespace flag, by default the user namespace's, with `nest` none.
    let clone_flags: &[u64] = match kind {
        Kind::Lock => rules::NS_FLAGS,
        Kind::Plain => &[rules::USERNS_FLAG],
        Kind::Nest => &[],
    };
    let clone = ScmpSyscall::from_name("clone").expect("clone");
    for flag in clone_flags {
        let cmp = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(*flag), *flag);
        ctx.add_rule_conditional(eperm, clone, &[cmp]).expect("clone flags");
    }
    if kind == Kind::Plain {
        // `lock` refuses unshare whatever its flags; by default only a new user namespace.
        let unshare = ScmpSyscall::from_name("unshare").expect("unshare");
        let cmp = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(rules::USERNS_FLAG), rules::USERNS_FLAG);
        ctx.add_rule_conditional(eperm, unshare, &[cmp]).expect("unshare flags");
    }
    if !clone_flags.is_empty() {
        // clone3 passes its flags in memory, out of a filter's reach: answer ENOSYS so that
        // libc falls back to clone, whose flags the rules above see.
        let clone3 = ScmpSyscall::from_name("clone3").expect("clone3");
        ctx.add_rule(ScmpAction::Errno(38 /* ENOSYS */), clone3).expect("clone3");
    }

    let mut file = tempfile();
    ctx.export_bpf(&file).expect("export bpf");
    let mut bytes = Vec::new();
    file.rewind().expect("rewind");
    file.read_to_end(&mut bytes).expect("read bpf");
    assert!(!bytes.is_empty() && bytes.len() % 8 == 0, "libseccomp exported no BPF");
    bytes
}

fn libc_eperm() -> i32 {
    1
}

fn tempfile() -> std::fs::File {
    let path = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("seccomp.tmp");
    std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).expect("temp file")
}

/// Builds `c/NAME.c` into a static, free-standing binary `OUT_DIR/NAME`: no libc, no loader
/// (a vserver's root may have neither), nothing but its own code.
fn freestanding(name: &str) {
    let src = PathBuf::from(format!("c/{name}.c"));
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = std::process::Command::new(&cc)
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
            "-Ic",
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

fn main() {
    println!("cargo:rerun-if-changed=c/freestanding.h");
    println!("cargo:rerun-if-env-changed=CC");
    freestanding("init");
    freestanding("vtool");
    freestanding("monitor");
    println!("cargo:rerun-if-changed=src/seccomp/rules.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("seccomp-plain.bpf"), compile(Kind::Plain)).expect("write");
    std::fs::write(out.join("seccomp-nest.bpf"), compile(Kind::Nest)).expect("write");
    std::fs::write(out.join("seccomp-lock.bpf"), compile(Kind::Lock)).expect("write");
}
