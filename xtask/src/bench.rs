//! `cargo xtask bench`: every figure of `docs/benchmarks.md`, on a fresh machine. It installs
//! what is missing (nginx, wrk and brotli from Debian, moto in the venv, the console tools),
//! builds in release, prints the tables, then one summary table of every row with a goal
//! (Tandem, its reference in the same run, the ratio, the goal), which it also writes into
//! `docs/benchmarks.md`.

use crate::one_build::TANDEM_BUILD;
use crate::util::{self, cargo, cargo_step, done, run, step};
use crate::{console, setup};
use std::process::Command;
use tandem_shared::bench::{self, ROWS_ENV};

/// Debian packages the comparisons need, by the program that must be on PATH.
const APT: [(&str, &str); 3] = [("nginx", "nginx"), ("wrk", "wrk"), ("brotli", "brotli")];

fn apt_install_missing() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT
        .iter()
        .filter(|(bin, _)| {
            util::which(bin).is_none() && !std::path::Path::new("/usr/sbin").join(bin).exists()
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let t = step(&format!("apt-get install {}", missing.join(" ")));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    done(t);
    Ok(())
}

pub fn run_all() -> anyhow::Result<()> {
    setup::rust()?;
    setup::python()?;
    apt_install_missing()?;
    if !console::dist().join("index.html").is_file() {
        setup::console_tools()?;
        console::build()?;
    }

    let rows = util::target_dir().join("bench/rows.jsonl");
    std::fs::create_dir_all(rows.parent().expect("a file in a directory"))?;
    std::fs::write(&rows, "")?;
    // Every bench below appends its summary rows here (`tandem_shared::bench`).

    for (bench, title) in [
        (
            "throughput",
            "region throughput: tandem (redb) vs a bare axum handler",
        ),
        ("scale", "region scale: 10 k, 100 k and 1 M items"),
    ] {
        let t = step(title);
        run(cargo()
            .args(["bench", "-p", "tandem-api", "--bench", bench])
            .env(ROWS_ENV, &rows))?;
        done(t);
    }

    // `tandem` first, by the very command users run, so each reuses the other's build
    // (one_build.rs); the Lambda binaries apart: building them in the same command would give
    // the crates they share with `tandem` other features.
    cargo_step(
        &format!("release build: cargo {TANDEM_BUILD}"),
        TANDEM_BUILD,
    )?;
    cargo_step(
        "release build: tandem-api and the hello-world lambda_http example",
        "build --release -p tandem-api --bin tandem-api --example hello_lambda",
    )?;

    let t = step(
        "tandem bench --compare: replication lag, failover cost, edge vs nginx, memory, Lambda init, console size",
    );
    let mut sbin = std::env::var_os("PATH").unwrap_or_default();
    sbin.push(":/usr/sbin");
    run(Command::new(util::target_dir().join("release/tandem"))
        .args(["bench", "--compare"])
        .arg("--moto-server")
        .arg(setup::venv_bin("moto_server"))
        .arg("--console-dir")
        .arg(console::dist())
        .env("PATH", sbin)
        .env(ROWS_ENV, &rows))?;
    done(t);

    let t = step(
        "tandem bench --attacks: poison pages, stalled bodies, kills from outside, reads during a resync, verify's memory",
    );
    run(Command::new(util::target_dir().join("release/tandem")).args(["bench", "--attacks"]))?;
    done(t);
    summary(&rows)
}

/// Where `docs/benchmarks.md` keeps the latest summary table.
const DOC: &str = "docs/benchmarks.md";
const BEGIN: &str = "<!-- cargo xtask bench: summary begin -->";
const END: &str = "<!-- cargo xtask bench: summary end -->";

/// Prints every bench's rows as one table and puts it in `docs/benchmarks.md`.
fn summary(rows: &std::path::Path) -> anyhow::Result<()> {
    let rows = bench::parse_rows(&std::fs::read_to_string(rows)?)?;
    let table = bench::markdown(&rows);
    println!("\n# Summary: Tandem against its reference, measured in this run\n\n{table}");
    let doc = util::root().join(DOC);
    let text = std::fs::read_to_string(&doc)?;
    let updated = replace_between(&text, &table)
        .ok_or_else(|| anyhow::anyhow!("{DOC} has no {BEGIN} ... {END} block"))?;
    std::fs::write(&doc, updated)?;
    println!("(written to {DOC})");
    Ok(())
}

/// `text` with what lies between [`BEGIN`] and [`END`] replaced by `table`.
fn replace_between(text: &str, table: &str) -> Option<String> {
    let start = text.find(BEGIN)? + BEGIN.len();
    let end = start + text[start..].find(END)?;
    Some(format!("{}\n{table}{}", &text[..start], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_replaces_only_its_block() {
        let doc = format!("# B\n\n{BEGIN}\nold\n{END}\n\nrest\n");
        let new = replace_between(&doc, "| new |\n").unwrap();
        assert_eq!(new, format!("# B\n\n{BEGIN}\n| new |\n{END}\n\nrest\n"));
        assert_eq!(replace_between("no block", "x"), None);
    }

    #[test]
    fn the_benchmarks_doc_has_the_block() {
        let doc = std::fs::read_to_string(util::root().join(DOC)).unwrap();
        assert!(replace_between(&doc, "").is_some());
    }
}
