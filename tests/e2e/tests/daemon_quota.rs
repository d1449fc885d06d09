//! Disk quota per vserver on a loop-mounted btrfs image: the root is a subvolume with a qgroup
//! limit; writing past it fails inside while the same write succeeds in an unlimited subvolume;
//! `ListStats` shows used and limit. On this machine's ext4 the check explains that project
//! quotas need kernel support it lacks.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::{populate_root_at, require_root, TestDir};

const T: Duration = Duration::from_secs(20);

/// A btrfs filesystem on a loop device, unmounted and detached on drop.
struct Btrfs {
    mount: PathBuf,
    loopdev: String,
}

impl Btrfs {
    fn new(dir: &Path) -> Option<Btrfs> {
        if Command::new("mkfs.btrfs").arg("--version").output().is_err() {
            eprintln!("skipped: mkfs.btrfs (btrfs-progs) is not installed");
            return None;
        }
        let image = dir.join("btrfs.img");
        fs::File::create(&image).unwrap().set_len(256 << 20).unwrap();
        let out = Command::new("losetup").args(["--find", "--show"]).arg(&image).output().unwrap();
        assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
        let loopdev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mount = dir.join("btrfs");
        fs::create_dir_all(&mount).unwrap();
        let me = Btrfs { mount, loopdev };
        let st = Command::new("mkfs.btrfs").args(["-q", "-f", &me.loopdev]).status().unwrap();
        assert!(st.success(), "mkfs.btrfs");
        let st = Command::new("mount").args(["-t", "btrfs", &me.loopdev]).arg(&me.mount).status().unwrap();
        assert!(st.success(), "mount");
        Some(me)
    }

    fn subvolume(&self, name: &str) -> PathBuf {
        let p = self.mount.join(name);
        let st = Command::new("btrfs").args(["-q", "subvolume", "create"]).arg(&p).status().unwrap();
        assert!(st.success(), "btrfs subvolume create");
        p
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = Command::new("losetup").args(["-d", &self.loopdev]).status();
    }
}

fn dd_script(root: &Path) {
    symlink("busybox", root.join("bin/dd")).unwrap();
}

#[test]
fn a_btrfs_root_gets_a_qgroup_limit_that_writes_inside_cannot_pass() {
    require_root!();
    let t = TestDir::new("quota");
    let Some(fs_) = Btrfs::new(&t.path) else { return };
    let bus = TestBus::start();
    let root = fs_.subvolume("q1");
    populate_root_at(&root);
    dd_script(&root);
    // Positive control: the same write in an unlimited subvolume of the same filesystem works.
    let free = fs_.subvolume("free");
    let st = Command::new("dd").args(["if=/dev/zero", "bs=1M", "count=48", "status=none"]).arg(format!("of={}", free.join("big").display())).status().unwrap();
    assert!(st.success(), "48 MiB fit on the filesystem itself");

    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        d.config(
            "q1",
            &format!(
                "root = {:?}\ncontext = 401\n[init]\ncommand = [\"/bin/sh\", \"-c\", \"dd if=/dev/zero of=/big bs=1M count=48 2>&1; echo dd-rc=$?; sleep 1000 &\"]\nstop_timeout = 2\n[limits]\ndisk = \"16M\"\n",
                root.display().to_string()
            ),
        );
        d.start().await;
        let m = d.manager().await;
        let (ok, diags) = m.check_config("q1").await.unwrap();
        assert!(ok, "a btrfs subvolume root may have a disk quota: {diags:?}");
        m.start_vserver("q1").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        // The vserver's own disk is full: dd reports on the console, whose log is the host's.
        let console = eventually("dd inside has finished", T, || async {
            fs::read_to_string(d.log_dir.join("q1.log")).ok().filter(|s| s.contains("dd-rc="))
        })
        .await;
        assert!(!console.contains("dd-rc=0"), "writing 48 MiB under a 16 MiB quota must fail: {console}");
        assert!(console.contains("quota exceeded"), "dd's error: {console}");
        let size = fs::metadata(root.join("big")).map(|m| m.len()).unwrap_or(0);
        assert!(size <= 17 << 20, "the quota let {size} bytes through");

        let stats = eventually("figures with the quota", T, || async {
            m.list_stats().await.unwrap().into_iter().find(|s| s.name == "q1").filter(|s| s.disk_used > 0)
        })
        .await;
        assert_eq!(stats.disk_limit, 16 << 20);
        m.stop_vserver("q1").await.unwrap();
    });
}

#[test]
fn a_disk_quota_on_ext4_is_explained_by_check_and_refused() {
    require_root!();
    let t = TestDir::new("quota-ext4");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        d.root("e1");
        d.config("e1", "context = 402\n[init]\ncommand = [\"/bin/true\"]\n[limits]\ndisk = \"1G\"\n");
        d.start().await;
        let m = d.manager().await;
        let (ok, diags) = m.check_config("e1").await.unwrap();
        let fstype = String::from_utf8_lossy(&Command::new("stat").args(["-f", "-c", "%T"]).arg(&t.path).output().unwrap().stdout).trim().to_string();
        if fstype.contains("btrfs") {
            eprintln!("skipped: the test directory is on btrfs");
            return;
        }
        assert!(!ok, "a disk quota on {fstype} must be an error: {diags:?}");
        assert!(diags.iter().any(|l| l.contains("e1.toml") && l.contains("quotas need btrfs")), "{diags:?}");
        let r = m.start_vserver("e1").await;
        assert!(r.is_err(), "the start is refused");
    });
}
