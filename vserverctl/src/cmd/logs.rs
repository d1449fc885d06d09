//! `vserverctl logs [-f] [-n N] NAME`: the last lines of the vserver's console log (the file
//! named by its `LogFile` property), and with `-f` what is appended to it. A followed log that is
//! rotated (renamed or removed, then created anew) or truncated is reopened or reread from its
//! start, like `tail -F`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{warn, Ctx};
use crate::error::{exit, CtlError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep printing what is appended to the log; reopen it when it is rotated or truncated.
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the last lines to print first.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub lines: usize,
    /// The vserver.
    pub name: String,
}

/// How often a followed log is looked at.
const POLL: Duration = Duration::from_millis(250);

/// The offset where the last `n` lines of the first `len` bytes of `r` begin. A final line
/// without a newline counts as a line; the newline that ends the file does not start one.
pub fn tail_offset<R: Read + Seek>(r: &mut R, len: u64, n: usize) -> io::Result<u64> {
    if n == 0 || len == 0 {
        return Ok(len);
    }
    const CHUNK: u64 = 8192;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut end = len;
    let mut seen = 0usize;
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let size = (end - start) as usize;
        r.seek(SeekFrom::Start(start))?;
        r.read_exact(&mut buf[..size])?;
        for i in (0..size).rev() {
            let at = start + i as u64;
            if buf[i] == b'\n' && at != len - 1 {
                seen += 1;
                if seen == n {
                    return Ok(at + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

/// (device, inode): what tells a replaced file from the one we hold.
fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// A log being followed.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    id: (u64, u64),
    pos: u64,
}

impl Follower {
    /// Follows `file` (opened from `path`) from offset `pos`.
    pub fn new(path: &Path, file: File, pos: u64) -> io::Result<Follower> {
        let id = identity(&file.metadata()?);
        Ok(Follower { path: path.to_owned(), file: Some(file), id, pos })
    }

    /// Follows `path`, which does not exist yet: it is read from its start once it appears.
    pub fn waiting(path: &Path) -> Follower {
        Follower { path: path.to_owned(), file: None, id: (0, 0), pos: 0 }
    }

    /// Copies whatever is new to `out`, and says on `notes` when the file was truncated or
    /// replaced. Returns the number of bytes copied.
    pub fn poll(&mut self, out: &mut dyn Write, notes: &mut dyn Write) -> io::Result<u64> {
        let mut copied = 0;
        if let Some(file) = self.file.as_mut() {
            if file.metadata()?.len() < self.pos {
                writeln!(notes, "vserverctl: {} was truncated; reading it from its start", self.path.display())?;
                self.pos = 0;
            }
            copied += copy_from(file, self.pos, out)?;
            self.pos += copied;
        }
        // A file now at the path that is not the one we hold: rotation. We have read the old
        // one to its end above; switch to the new one.
        match std::fs::metadata(&self.path) {
            Ok(m) if self.file.is_none() || identity(&m) != self.id => match File::open(&self.path) {
                Ok(mut file) => {
                    if self.file.is_some() {
                        writeln!(notes, "vserverctl: {} was replaced; following the new file", self.path.display())?;
                    }
                    self.id = identity(&file.metadata()?);
                    let n = copy_from(&mut file, 0, out)?;
                    self.pos = n;
                    self.file = Some(file);
                    copied += n;
                }
                // Gone again between stat and open: look next time.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
            _ => {}
        }
        out.flush()?;
        Ok(copied)
    }
}

/// Copies `file` from `pos` to its current end into `out`; returns the bytes copied.
fn copy_from(file: &mut File, pos: u64, out: &mut dyn Write) -> io::Result<u64> {
    file.seek(SeekFrom::Start(pos))?;
    io::copy(file, out)
}

/// Ends quietly when the reader of our output went away (`vserverctl logs -f x | head`).
fn io_result(r: io::Result<u64>, path: &Path) -> Result<u64, CtlError> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(exit::OK.into()),
        r => r.map_err(|e| CtlError::io(format!("cannot read {}", path.display()), e)),
    }
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let name = &args.name;
    let action = format!("find the log of {name}");
    let proxy = ctx.vserver(name, &action, false).await?;
    let log = proxy.log_file().await.map_err(|e| CtlError::api(&action, Some(name), e))?;
    drop(proxy);
    if log.is_empty() {
        return Err(CtlError::Failed(format!(
            "{name} has no log file (vserverd reports none; see `vserverctl status {name}`)"
        )));
    }
    let path = PathBuf::from(log);
    let mut stdout = io::stdout().lock();

    let mut follower = match File::open(&path) {
        Ok(mut file) => {
            let len = file.metadata().map_err(|e| CtlError::io(format!("cannot read {}", path.display()), e))?.len();
            let start = tail_offset(&mut file, len, args.lines)
                .map_err(|e| CtlError::io(format!("cannot read {}", path.display()), e))?;
            let n = io_result(copy_from(&mut file, start, &mut stdout).and_then(|n| stdout.flush().map(|_| n)), &path)?;
            Follower::new(&path, file, start + n)
                .map_err(|e| CtlError::io(format!("cannot read {}", path.display()), e))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && args.follow => {
            warn(format!("{} does not exist yet; waiting for it", path.display()));
            Follower::waiting(&path)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CtlError::Failed(format!(
                "{name} has no log yet: {} does not exist (has it ever been started? `vserverctl start {name}`)",
                path.display()
            )));
        }
        Err(e) => return Err(CtlError::io(format!("cannot read {}", path.display()), e)),
    };
    if !args.follow {
        return Ok(exit::OK);
    }
    // The bus is not needed any more; nothing else runs on this thread.
    let mut notes = io::stderr();
    loop {
        tokio::time::sleep(POLL).await;
        io_result(follower.poll(&mut stdout, &mut notes), &path)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn tail(text: &str, n: usize) -> String {
        let mut c = Cursor::new(text.as_bytes().to_vec());
        let off = tail_offset(&mut c, text.len() as u64, n).unwrap() as usize;
        text[off..].to_owned()
    }

    #[test]
    fn last_lines() {
        assert_eq!(tail("", 10), "");
        assert_eq!(tail("a\nb\nc\n", 10), "a\nb\nc\n");
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a\nb\nc\n", 1), "c\n");
        assert_eq!(tail("a\nb\nc\n", 0), "");
        assert_eq!(tail("\n\n\n", 2), "\n\n");
        assert_eq!(tail("only", 3), "only");
    }

    #[test]
    fn last_lines_across_chunks() {
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(tail(&text, 3), "line 4997\nline 4998\nline 4999\n");
        assert_eq!(tail(&text, 5000), text);
        assert_eq!(tail(&text, 4000).lines().next(), Some("line 1000"));
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("vserverctl-test-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn poll(f: &mut Follower) -> (String, String) {
        let (mut out, mut notes) = (Vec::new(), Vec::new());
        f.poll(&mut out, &mut notes).unwrap();
        (String::from_utf8(out).unwrap(), String::from_utf8(notes).unwrap())
    }

    #[test]
    fn follows_appends_rotation_and_truncation() {
        let dir = TempDir::new("follow");
        let log = dir.0.join("web1.log");
        append(&log, "one\n");
        let mut f = Follower::new(&log, File::open(&log).unwrap(), 4).unwrap();
        assert_eq!(poll(&mut f), (String::new(), String::new()));

        append(&log, "two\n");
        assert_eq!(poll(&mut f).0, "two\n");

        // Rotation: the old file gets a last line, is renamed, and a new one is created.
        append(&log, "three\n");
        std::fs::rename(&log, dir.0.join("web1.log.1")).unwrap();
        append(&log, "new-one\n");
        let (out, notes) = poll(&mut f);
        assert_eq!(out, "three\nnew-one\n");
        assert!(notes.contains("was replaced"), "{notes}");

        append(&log, "new-two\n");
        assert_eq!(poll(&mut f).0, "new-two\n");

        // Truncation in place (copytruncate).
        std::fs::OpenOptions::new().write(true).truncate(true).open(&log).unwrap();
        append(&log, "x\n");
        let (out, notes) = poll(&mut f);
        assert_eq!(out, "x\n");
        assert!(notes.contains("was truncated"), "{notes}");

        // Removed and not yet recreated: nothing, no error; then it comes back.
        std::fs::remove_file(&log).unwrap();
        assert_eq!(poll(&mut f), (String::new(), String::new()));
        append(&log, "back\n");
        assert_eq!(poll(&mut f).0, "back\n");
    }

    #[test]
    fn waits_for_a_log_that_does_not_exist_yet() {
        let dir = TempDir::new("wait");
        let log = dir.0.join("db.log");
        let mut f = Follower::waiting(&log);
        assert_eq!(poll(&mut f), (String::new(), String::new()));
        append(&log, "hello\n");
        assert_eq!(poll(&mut f), ("hello\n".into(), String::new()));
        append(&log, "again\n");
        assert_eq!(poll(&mut f).0, "again\n");
    }
}
