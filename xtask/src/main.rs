//! Tandem's development tasks, in Rust (the `cargo xtask` pattern): `cargo xtask test` runs
//! everything CI runs and sets up what it needs first; `cargo xtask dev` runs the local stack
//! and builds the console behind it.
//!
//! Layout: `setup.rs` installs prerequisites (rustup targets and components, the Python venv,
//! trunk, wasm-bindgen-cli, wasm-opt); `console.rs` builds the console and checks its size
//! budget; `e2e.rs` drives it in headless Chromium; `templates.rs` lints the AWS templates;
//! `function/` runs the edge's CloudFront Function in Node.js against the routing cases;
//! `bench.rs` measures everything in `docs/benchmarks.md`; `dev.rs` is `cargo xtask dev`;
//! `tidy.rs` checks the code's shape (no import cycles, no file over 1,000 lines) as tests;
//! `test.rs` runs the checks in order; `util.rs` has process and port helpers.

mod bench;
mod console;
mod dev;
mod e2e;
mod function;
mod one_build;
mod setup;
mod templates;
mod test;
#[cfg(test)]
mod tidy;
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
    /// Everything CI runs: fmt, clippy, tests (moto included), wasm32 checks, the console's
    /// build and size budget, schemathesis, end-to-end tests in headless Chromium.
    Test,
    /// Same as `test`: what `.ci/run` runs.
    Ci,
    /// Only the console's release build and its size budget.
    Console,
    /// Only the end-to-end tests (against the console already in frontend/dist); their
    /// screenshots go to target/e2e/screenshots/.
    E2e,
    /// The end-to-end tests, writing their screenshots to docs/screenshots/ (the README's).
    Screenshots,
    /// Every benchmark figure (installs nginx, wrk, brotli when missing).
    Bench,
    /// Build `tandem-local` and run `tandem-local up`, then build the console behind it (a page that
    /// reloads itself stands in until it is built); extra arguments go to `tandem up`.
    Dev {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Test | Command::Ci => test::run_all(),
        Command::Console => {
            setup::rust()?;
            setup::console_tools()?;
            console::build()?;
            console::size_budget()
        }
        Command::E2e => e2e::run_all(e2e::Screenshots::Target).map(drop),
        Command::Screenshots => e2e::run_all(e2e::Screenshots::Docs).map(drop),
        Command::Bench => bench::run_all(),
        Command::Dev { args } => dev::run(args),
    }
}

#[cfg(test)]
mod tests {
    /// clap checks a command's arguments (a name used twice, say) only when it parses them: a
    /// duplicate in a subcommand nobody's test parses would panic in the first user's hands.
    #[test]
    fn every_subcommand_s_arguments_are_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
