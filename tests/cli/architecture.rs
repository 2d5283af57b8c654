//! docs/architecture.md stays true: every `crate::` path from one
//! top-level module of `src/` into another is an edge the page allows, the
//! allowed graph has no cycle, and every module is on the page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The edges the page allows: the fenced block after "## Which module may
/// use which", one `module → used used …` line per module.
fn allowed() -> Graph {
    let page = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let section = page
        .split("## Which module may use which")
        .nth(1)
        .expect("docs/architecture.md has a `## Which module may use which` section");
    let block = section
        .split("```")
        .nth(1)
        .expect("the section has a fenced block of `module → uses` lines");
    let mut graph = Graph::new();
    for line in block.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (from, to) = line
            .split_once('→')
            .unwrap_or_else(|| panic!("`{line}` is not `module → used …`"));
        graph.insert(
            from.trim().to_string(),
            to.split_whitespace().map(str::to_string).collect(),
        );
    }
    graph
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The edges the code has, tests left out (a test may reach anywhere).
fn actual() -> Graph {
    let src = root().join("src");
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut uses = BTreeSet::new();
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for used in crate_paths(code) {
                if used != name {
                    uses.insert(used);
                }
            }
        }
        graph.insert(name, uses);
    }
    graph
}

fn rust_files(path: &Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") && !p.ends_with("tests.rs") {
            files.push(p);
        }
    }
    files
}

/// `crate::x::…` and the `x`, `y` of `use crate::{x::…, y};`.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            // Nested braces close early; the first name of each item is
            // what matters.
            for item in group.split(',') {
                found.push(ident(item.trim()));
            }
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

#[test]
fn the_module_map_allows_every_dependency_and_has_no_cycle() {
    let allowed = allowed();
    let actual = actual();
    let mut problems = Vec::new();
    for (module, uses) in &actual {
        let Some(may) = allowed.get(module) else {
            problems.push(format!("`{module}` is not on docs/architecture.md's map"));
            continue;
        };
        for used in uses.iter().filter(|u| actual.contains_key(*u)) {
            if !may.contains(used) {
                problems.push(format!(
                    "`{module}` uses `{used}`, which docs/architecture.md does not allow"
                ));
            }
        }
    }
    for module in allowed.keys().filter(|m| !actual.contains_key(*m)) {
        problems.push(format!(
            "docs/architecture.md lists `{module}`, which src/ does not have"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    if let Some(cycle) = cycle(&allowed) {
        panic!("docs/architecture.md allows a cycle: {}", cycle.join(" → "));
    }
}

/// A cycle in the graph, by depth-first search, if there is one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(graph, n, &mut Vec::new(), &mut done))
}

#[test]
fn a_cycle_is_found() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(f, t)| (f.to_string(), BTreeSet::from([t.to_string()])))
        .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let mut acyclic = graph.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert!(cycle(&acyclic).is_none());
}
