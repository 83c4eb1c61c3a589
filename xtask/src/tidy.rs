//! The code's own shape, checked as a test (rust-analyzer's tidy test is the model): no import
//! cycles between the top-level modules of a crate, no product file longer than
//! [`MAX_LINES`], and a `//!` line at the top of every module.
//!
//! A crate's graph is read from its sources: module `a` (`src/a.rs`, or anything under
//! `src/a/`) depends on `b` when it names `crate::b` in code (a `use`, a path; doc comments are
//! not code). `super::` stays inside a module's own tree and makes no edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a product source file may be (tests and benches aside): past it, split it.
pub const MAX_LINES: usize = 1000;

/// The crates whose sources are checked, by directory.
pub const CRATES: [&str; 10] = [
    "shared",
    "api",
    "frontend",
    "infra/ops",
    "infra/local",
    "infra/aws",
    "infra/cli",
    "testkit",
    "workspace-hack",
    "xtask",
];

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file under `src` belongs to (`None`: the crate root itself).
pub fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    match name {
        "lib" | "main" => None,
        // `src/bin/x.rs` is a binary of its own, with its own `crate`.
        "bin" => None,
        _ => Some(name.to_owned()),
    }
}

/// The modules named as `crate::<name>` in the code of `text` (comments skipped).
pub fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            // `tandem_api::…` ends in `api::`, not `crate::`; `$crate::` is a macro's.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                refs.extend(group_heads(group));
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    refs.insert(name);
                }
            }
        }
    }
    refs
}

/// The first segment of each item of a `{a, b::c, d::{e}}` group (up to its closing brace).
fn group_heads(group: &str) -> Vec<String> {
    let (mut depth, mut item, mut heads) = (0usize, String::new(), Vec::new());
    let mut push = |item: &mut String| {
        let head: String = item
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !head.is_empty() && head != "self" {
            heads.push(head);
        }
        item.clear();
    };
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                push(&mut item);
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            item.push(c);
        }
    }
    push(&mut item);
    heads
}

/// Module → the other modules of the crate it names.
pub fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let Some(module) = top_module(src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(crate_refs(&text).into_iter().filter(|r| *r != module));
    }
    graph
}

/// The cycles of a graph, each as its modules in order (one per strongly connected component
/// of more than one module).
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Modules that reach each other both ways share a component.
    let reach = |from: &str| -> BTreeSet<String> {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.to_owned()]);
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut placed = BTreeSet::new();
    for m in graph.keys() {
        if placed.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let component: Vec<String> = graph
            .keys()
            .filter(|o| reaches[m].contains(*o) && reaches[*o].contains(m))
            .cloned()
            .collect();
        placed.extend(component.iter().cloned());
        found.push(component);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::root;

    #[test]
    fn references_are_read_from_code_not_comments() {
        let text = "use crate::a::X;\nuse crate::{b, c::{D, E}, self};\n/// [`crate::doc`]\n\
                    let x = crate::f(); // crate::comment\nuse tandem_api::crate_like;\n";
        let refs: Vec<String> = crate_refs(text).into_iter().collect();
        assert_eq!(refs, ["a", "b", "c", "f"]);
        let graph = BTreeMap::from([
            ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
            ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
            ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
            ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
        ]);
        assert_eq!(cycles(&graph), [["a", "b", "c"]]);
    }

    /// A crate added to the workspace is checked too: the list is the workspace's members.
    #[test]
    fn the_checks_cover_every_workspace_member() {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let members = manifest
            .lines()
            .find_map(|l| l.strip_prefix("members = "))
            .expect("a members = [...] line in the workspace manifest");
        let members: BTreeSet<&str> = members
            .trim_matches(['[', ']'])
            .split(',')
            .map(|m| m.trim().trim_matches('"'))
            .collect();
        assert_eq!(members, CRATES.into_iter().collect::<BTreeSet<_>>());
    }

    #[test]
    fn no_crate_has_an_import_cycle() {
        let mut all = Vec::new();
        for krate in CRATES {
            for cycle in cycles(&module_graph(&root().join(krate).join("src"))) {
                all.push(format!("{krate}: {}", cycle.join(" <-> ")));
            }
        }
        assert!(all.is_empty(), "import cycles:\n{}", all.join("\n"));
    }

    #[test]
    fn no_product_file_is_longer_than_the_limit() {
        let mut long = Vec::new();
        for krate in CRATES {
            for file in rust_files(&root().join(krate).join("src")) {
                let lines = std::fs::read_to_string(&file)
                    .unwrap_or_default()
                    .lines()
                    .count();
                if lines > MAX_LINES {
                    long.push(format!("{} ({lines} lines)", file.display()));
                }
            }
        }
        assert!(
            long.is_empty(),
            "files over {MAX_LINES} lines:\n{}",
            long.join("\n")
        );
    }

    #[test]
    fn every_module_says_what_it_is() {
        let mut silent = Vec::new();
        for krate in CRATES {
            for file in rust_files(&root().join(krate).join("src")) {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                if !text.trim_start().starts_with("//!") {
                    silent.push(file.display().to_string());
                }
            }
        }
        assert!(
            silent.is_empty(),
            "modules without a //! line:\n{}",
            silent.join("\n")
        );
    }
}
