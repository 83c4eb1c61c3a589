//! AWS template checks run by `cargo xtask test`: cfn-lint (nothing reported) and checkov
//! (no failed check that the template does not skip with a written reason).
//!
//! They get a venv of their own: checkov pins much of its dependency tree, and sharing a venv
//! with moto and schemathesis would make the three fight over versions.

use crate::setup;
use crate::util::{self, done, run, step};
use std::path::PathBuf;
use std::process::Command;

/// The pins, also the venv's stamp: a change reinstalls.
const REQUIREMENTS: [&str; 2] = ["checkov==3.3.30", "cfn-lint==1.58.0"];

fn venv() -> PathBuf {
    util::target_dir().join("venv-templates")
}

fn tools() -> anyhow::Result<()> {
    let t = step("python venv for template checks: checkov, cfn-lint (pinned)");
    let stamp = venv().join("requirements.installed");
    let wanted = REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        setup::make_venv(&venv(), REQUIREMENTS)?;
        std::fs::write(&stamp, wanted)?;
    }
    done(t);
    Ok(())
}

pub fn run_all() -> anyhow::Result<()> {
    tools()?;
    let templates: Vec<_> = std::fs::read_dir(util::root().join("infra/aws/cloudformation"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    anyhow::ensure!(
        !templates.is_empty(),
        "no templates under infra/aws/cloudformation"
    );

    let t = step("cfn-lint infra/aws/cloudformation/*.yaml");
    run(Command::new(venv().join("bin/cfn-lint")).args(&templates))?;
    done(t);

    let t = step("checkov (offline) on infra/aws/cloudformation");
    run(Command::new(venv().join("bin/checkov")).args([
        "-d",
        "infra/aws/cloudformation",
        "--framework",
        "cloudformation",
        "--skip-download",
        "--quiet",
        "--compact",
    ]))?;
    done(t);
    Ok(())
}
