//! One release build for every command (issue 27): `cargo xtask dev` builds `tandem-local`
//! alone, users build `cargo build --release --bin tandem`, and `cargo xtask bench` starts with
//! that very command. Cargo reuses a crate's artifacts only when it is built with the same
//! features, so the third-party crates the local stack uses must get the same features in both
//! builds; `workspace-hack` asks for the ones the larger build adds. This check reads both
//! builds' features with `cargo tree` and names any crate that drifts.

/// The command users run for the `tandem` binary, and the bench's first build: the same
/// arguments, so the same features.
pub const TANDEM_BUILD: &str = "build --release --bin tandem";

/// `cargo xtask dev`'s build: the local stack's commands without the AWS SDK.
pub const LOCAL_BUILD: &str = "build --release -p tandem-local --bin tandem-local";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util;
    use std::collections::BTreeSet;

    /// Crates allowed to differ, with the reason. reqwest: TLS (rustls, ring) is for AWS endpoints;
    /// asking for it in the local build would add about a minute to its first build, and only
    /// reqwest itself and Tandem's crates above it are built twice.
    const ALLOWED_TO_DIFFER: &[&str] = &["reqwest"];

    /// The `(package, features)` pairs of third-party crates in a `cargo tree` run: one line per
    /// package and feature set (a crate built for the host and the target may have two).
    fn third_party_features(tree: &str) -> BTreeSet<(String, String)> {
        tree.lines()
            .map(|l| l.trim_end_matches(" (*)"))
            .filter_map(|l| l.split_once('|'))
            // Tandem's own crates are named with their path: "tandem-api v0.1.0 (/…/api)".
            .filter(|(package, _)| !package.contains(" (/"))
            .map(|(package, features)| {
                let name = package.trim_end_matches(" (proc-macro)");
                (name.to_owned(), features.to_owned())
            })
            .collect()
    }

    /// `cargo tree` for a selection of packages: what `cargo build` of the same selection
    /// resolves (no dev-dependencies; the packages' features unified).
    fn tree(packages: &[&str]) -> String {
        let out = util::cargo()
            .args(["tree", "--locked", "-e", "no-dev", "--prefix", "none"])
            .args(["--format", "{p}|{f}"])
            .args(packages.iter().flat_map(|p| ["-p", p]))
            .current_dir(util::root())
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("cargo tree prints UTF-8")
    }

    #[test]
    fn the_local_build_gives_shared_crates_the_tandem_build_s_features() {
        // `cargo build --bin tandem` with no -p selects every default member.
        let tandem = third_party_features(&tree(&[]));
        let local = third_party_features(&tree(&["tandem-local"]));
        let drifted: Vec<_> = local
            .difference(&tandem)
            .filter(|(name, _)| {
                let crate_name = name.split(' ').next().unwrap_or_default();
                !ALLOWED_TO_DIFFER.contains(&crate_name)
            })
            .collect();
        assert!(
            drifted.is_empty(),
            "the local build's features differ from `cargo {TANDEM_BUILD}`'s for {drifted:?}: \
             add the tandem build's features to workspace-hack/Cargo.toml"
        );
        assert!(
            local.len() > 100,
            "cargo tree listed {} crates",
            local.len()
        );
    }

    #[test]
    fn tree_lines_are_read_as_package_and_features() {
        let tree = "serde v1.0.1|default,std\nsyn v2.0.1 (proc-macro)|full\n\
                    tandem-api v0.1.0 (/w/api)|aws\nserde v1.0.1|default,std (*)\n";
        let got = third_party_features(tree);
        let want: BTreeSet<(String, String)> = [
            ("serde v1.0.1".to_owned(), "default,std".to_owned()),
            ("syn v2.0.1".to_owned(), "full".to_owned()),
        ]
        .into();
        assert_eq!(got, want);
    }
}
