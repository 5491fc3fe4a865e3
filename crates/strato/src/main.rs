//! The `strato` command: `up` runs everything in one process; the other subcommands
//! manage accounts and print the client environment.

mod cli;
mod console;
mod images;
mod metadata;
mod up;

use clap::Parser;

/// mimalloc keeps freed pages for reuse: a DescribeInstances page of 1,000 builds a
/// few MB of rows and XML, and the system allocator hands those back to the kernel
/// and faults fresh zeroed pages in on the next request.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    cli.run()
}
