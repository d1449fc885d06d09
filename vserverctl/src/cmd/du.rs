//! `vserverctl du [NAME]`: the paper's `vdu`, the disk space a vserver really uses. A unified
//! vserver counts only its own files (its overlay's upper directory), not its template; a plain
//! one its root (hard-linked inodes once, symlinks not followed, one filesystem). A btrfs
//! subvolume root reports its exclusive bytes from the qgroup figures when quotas are on, and
//! "unknown" otherwise (its blocks are shared with its snapshot's origin).

use anyhow::Result;
use serde::Serialize;

use crate::build::du::{human, usage};
use crate::build::{ops, Dirs};
use crate::cli::Cli;
use crate::error::exit;
use crate::output::{self, Align, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vserver (default: every configured vserver).
    pub name: Option<String>,
    #[command(flatten)]
    pub dirs: Dirs,
}

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    /// Bytes used by the vserver's own files; null when unknown.
    bytes: Option<u64>,
    /// What was counted.
    counted: String,
}

fn row(dirs: &Dirs, name: &str) -> Result<Row> {
    let l = ops::locate(dirs, name)?;
    if let Some(upper) = &l.upper {
        let u = usage(upper)?;
        return Ok(Row { name: name.into(), bytes: Some(u.bytes), counted: format!("{} (over template {})", upper.display(), l.template.unwrap_or_default()) });
    }
    if let Some((_, excl)) = btrfs_exclusive(&l.root) {
        return Ok(Row { name: name.into(), bytes: excl, counted: format!("{} (btrfs subvolume, exclusive)", l.root.display()) });
    }
    let u = usage(&l.root)?;
    Ok(Row { name: name.into(), bytes: Some(u.bytes), counted: l.root.display().to_string() })
}

/// For a btrfs subvolume root: Some(exclusive bytes when quotas are on).
fn btrfs_exclusive(root: &std::path::Path) -> Option<((), Option<u64>)> {
    vserver_engine::quota::check(root).ok()?;
    Some(((), vserver_engine::quota::exclusive(root)))
}

pub fn run(cli: &Cli, a: &Args) -> Result<u8> {
    let dirs = a.dirs.clone().absolute();
    let names: Vec<String> = match &a.name {
        Some(n) => vec![n.clone()],
        None => vserver_config::load_dir(&dirs.config_dir, &dirs.load_options()).vservers.into_keys().collect(),
    };
    let mut rows = Vec::new();
    let mut code = exit::OK;
    for n in &names {
        match row(&dirs, n) {
            Ok(r) => rows.push(r),
            Err(e) if a.name.is_some() => return Err(e),
            Err(e) => {
                super::warn(format!("{n}: {e:#}"));
                code = exit::FAILURE;
            }
        }
    }
    if cli.json() {
        output::print(&output::json_string(&rows));
    } else {
        let mut t = Table::new(&[("NAME", Align::Left), ("USED", Align::Right), ("COUNTED", Align::Left)]);
        for r in &rows {
            t.row(vec![r.name.clone(), r.bytes.map(human).unwrap_or_else(|| "unknown".into()), r.counted.clone()]);
        }
        output::print(&t.render(!cli.no_legend));
    }
    Ok(code)
}
