//! Tandem's development tasks, in Rust (the `cargo xtask` pattern): `cargo xtask test` runs
//! everything CI runs and sets up what it needs first.
//!
//! Layout: `setup.rs` installs prerequisites (rustup targets and components, the Python venv);
//! `test.rs` runs the checks in order; `util.rs` has process and port helpers.

mod setup;
mod test;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Tandem's development tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything CI runs: fmt, clippy, tests (moto included), wasm32 check, schemathesis.
    Test,
    /// Same as `test`: what `.ci/run` runs.
    Ci,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Test | Command::Ci => test::run_all(),
    }
}
