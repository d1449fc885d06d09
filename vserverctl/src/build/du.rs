//! The paper's `vdu`: the disk space a tree really uses. Blocks of every inode, a hard-linked
//! inode counted once, symlinks never followed, and the walk stays on the tree's filesystem.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context as _, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Allocated bytes (st_blocks × 512).
    pub bytes: u64,
    /// Inodes counted.
    pub inodes: u64,
}

/// The usage of `path` and everything below it on its filesystem.
pub fn usage(path: &Path) -> Result<Usage> {
    let md = std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mut seen = HashSet::new();
    let mut u = Usage::default();
    add(&md, &mut seen, &mut u);
    if md.is_dir() {
        walk(path, md.dev(), &mut seen, &mut u)?;
    }
    Ok(u)
}

fn add(md: &std::fs::Metadata, seen: &mut HashSet<(u64, u64)>, u: &mut Usage) {
    if md.nlink() > 1 && !md.is_dir() && !seen.insert((md.dev(), md.ino())) {
        return;
    }
    u.bytes += md.blocks() * 512;
    u.inodes += 1;
}

fn walk(dir: &Path, dev: u64, seen: &mut HashSet<(u64, u64)>, u: &mut Usage) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let md = match std::fs::symlink_metadata(e.path()) {
            Ok(m) => m,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("reading {}", e.path().display())),
        };
        if md.dev() != dev {
            continue;
        }
        add(&md, seen, u);
        if md.is_dir() {
            walk(&e.path(), dev, seen, u)?;
        }
    }
    Ok(())
}

/// A size for people: 1.5M, 12K, 0.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if bytes < 1024 {
        return bytes.to_string();
    }
    let mut v = bytes as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if v < 10.0 {
        format!("{v:.1}{}", UNITS[i])
    } else {
        format!("{v:.0}{}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0");
        assert_eq!(human(1536), "1.5K");
        assert_eq!(human(20 * 1024 * 1024), "20M");
    }

    #[test]
    fn hard_links_count_once() {
        let d = std::env::temp_dir().join(format!("vs-du-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a"), vec![1u8; 64 * 1024]).unwrap();
        let one = usage(&d).unwrap();
        std::fs::hard_link(d.join("a"), d.join("b")).unwrap();
        std::os::unix::fs::symlink("/usr", d.join("c")).unwrap();
        let two = usage(&d).unwrap();
        assert_eq!(two.bytes, one.bytes, "the link adds no blocks, the symlink is not followed");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
