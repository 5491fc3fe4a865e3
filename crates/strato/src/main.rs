//! The `strato` command: `up` runs everything in one process; the other subcommands
//! manage accounts and print the client environment.

mod cli;
mod console;
mod metadata;
mod up;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    cli.run()
}
