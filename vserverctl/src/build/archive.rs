//! A root from a tarball (plain, gzip with `flate2`; xz, zstd and bzip2 through the host's
//! `xz`, `zstd`, `bzip2`). Nothing is ever written outside the target: entries with `..` or an
//! absolute path are refused (the whole build fails), link targets of hard links likewise, and
//! the `tar` crate's `unpack_in` checks that each entry's parent, resolved, is still inside the
//! target, so a symlink made by the archive itself cannot carry a later entry out. Device nodes
//! and fifos are skipped: the engine gives every vserver its own `/dev`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context as _, Result};

use super::Progress;

/// A reader that reports how far into the file it is.
struct Counting<'a, R> {
    inner: R,
    pos: u64,
    progress: &'a Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        self.progress.set(self.pos);
        Ok(n)
    }
}

fn safe_relative(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Whether `path` looks like a tarball (by its first bytes) rather than a directory.
pub fn is_archive(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.is_file()).unwrap_or(false)
}

/// Unpacks `file` into the existing empty directory `dst`; returns the number of entries.
pub fn unpack(file: &Path, dst: &Path, progress: &Progress) -> Result<u64> {
    let mut f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let len = f.metadata()?.len();
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic)?;
    drop(f);
    let magic = &magic[..n];
    let tool = if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if magic.starts_with(b"BZh") {
        Some("bzip2")
    } else {
        None
    };
    progress.phase(&format!("unpacking {}", file.display()), len);
    let file_reader = Counting { inner: BufReader::new(File::open(file)?), pos: 0, progress };
    let mut child: Option<Child> = None;
    let reader: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(file_reader))
    } else if let Some(tool) = tool {
        let c = Command::new(tool)
            .arg("-dc")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {tool} to decompress {} (is it installed?)", file.display()))?;
        let out = child.insert(c).stdout.take().context("decompressor's output")?;
        Box::new(out)
    } else {
        Box::new(file_reader)
    };
    let result = unpack_reader(reader, dst);
    if let Some(mut c) = child {
        let _ = c.kill();
        let st = c.wait()?;
        if result.is_ok() && !st.success() {
            bail!("decompressing {} failed ({st})", file.display());
        }
    }
    result
}

fn unpack_reader(reader: Box<dyn Read + '_>, dst: &Path) -> Result<u64> {
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    let mut n = 0;
    for entry in ar.entries().context("reading the archive")? {
        super::check_interrupted()?;
        let mut entry = entry.context("reading the archive")?;
        let path = entry.path().context("an entry's path")?.into_owned();
        if !safe_relative(&path) {
            bail!("refusing the archive: entry {} is absolute or leaves the target with '..'", path.display());
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() || kind.is_symlink() {
            let link = entry.link_name().context("an entry's link")?.map(|l| l.into_owned());
            if kind.is_hard_link() && !link.as_deref().is_some_and(safe_relative) {
                bail!("refusing the archive: hard link {} points outside the target", path.display());
            }
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            continue;
        }
        if !entry.unpack_in(dst).with_context(|| format!("unpacking {}", path.display()))? {
            bail!("refusing the archive: entry {} would land outside the target", path.display());
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_only() {
        assert!(safe_relative(Path::new("./bin/sh")));
        assert!(safe_relative(Path::new("etc")));
        assert!(!safe_relative(Path::new("/etc/passwd")));
        assert!(!safe_relative(Path::new("a/../../etc")));
    }
}
