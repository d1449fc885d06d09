//! `vserverctl template list|create|remove`: the shared, read-only trees unified vservers are
//! overlays of (the paper's unification).

use anyhow::Result;

use super::build::SourceArgs;
use crate::build::du::human;
use crate::build::{ops, Dirs};
use crate::cli::Cli;
use crate::error::{exit, CtlError};
use crate::output::{self, Align, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Every template: name, size, the vservers using it.
    List {
        #[command(flatten)]
        dirs: Dirs,
    },
    /// Make a template from any source of `build`.
    Create {
        name: String,
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        dirs: Dirs,
    },
    /// Remove a template (refused while a configured vserver uses it).
    Remove {
        name: String,
        #[command(flatten)]
        dirs: Dirs,
    },
}

pub async fn run(cli: &Cli, a: &Args) -> Result<u8> {
    match &a.what {
        What::List { dirs } => {
            let list = ops::list_templates(&dirs.clone().absolute())?;
            if cli.json() {
                output::print(&output::json_string(&list));
            } else {
                let mut t = Table::new(&[("NAME", Align::Left), ("SIZE", Align::Right), ("USED BY", Align::Left)]);
                for i in &list {
                    t.row(vec![i.name.clone(), human(i.bytes), output::join_or_dash(&i.used_by, ",")]);
                }
                t.footer(format!("{} templates.", list.len()));
                output::print(&t.render(!cli.no_legend));
            }
        }
        What::Create { name, source, dirs } => {
            let dirs = dirs.clone().absolute();
            let src = source
                .source(&dirs)
                .filter(|_| source.template.is_some() as u8 + source.from_host as u8 + source.debootstrap.is_some() as u8 == 1)
                .ok_or_else(|| CtlError::Usage("template create needs exactly one of --template, --from-host, --debootstrap".into()))?;
            let p = ops::create_template(&dirs, name, &src)?;
            println!("{}", p.display());
        }
        What::Remove { name, dirs } => ops::remove_template(&dirs.clone().absolute(), name)?,
    }
    Ok(exit::OK)
}
