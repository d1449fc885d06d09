// The seccomp denylist, shared by the build script (which compiles it to BPF with libseccomp)
// and the engine (which documents and tests it). Plain data and one compile function.

/// Always denied: module loading, kexec, handles to host inodes, the kernel keyring (not
/// namespaced), eBPF and perf (kernel-wide), userfaultfd (a kernel-exploit primitive).
pub const ALWAYS_DENIED: &[&str] = &[
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "lookup_dcookie",
    "uselib",
    "nfsservctl",
];

/// Denied with the paper's `lock` flag: no new contexts and no mounts from inside.
pub const LOCK_DENIED: &[&str] = &[
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
];

/// ioctl requests denied everywhere: TIOCSTI pushes input into another session's terminal,
/// TIOCLINUX reads and pastes the host's virtual console selection.
pub const DENIED_IOCTLS: &[(&str, u64)] = &[("TIOCSTI", 0x5412), ("TIOCLINUX", 0x541C)];

/// CLONE_NEWUSER: `unshare` and `clone` may not carry it unless the context has the `nest` flag
/// (user namespaces refused by default, as Docker's profile does); `clone3` then answers ENOSYS.
pub const USERNS_FLAG: u64 = 0x1000_0000;

/// Namespace flags that `clone` may not carry under `lock`.
pub const NS_FLAGS: &[u64] = &[
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
    0x80, // CLONE_NEWTIME
];

