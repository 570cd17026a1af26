//! The shape of the code, checked from its source: the import graph between the top-level
//! modules has no cycle, neither has the graph between the files inside each module, and
//! the pure core (`client_ip`, `proxy_protocol`, `allowlist`, `decision`, `site_binding`,
//! `route`) uses no Pingora, no metrics and no pages. Test code (`#[cfg(test)]` items and
//! `tests.rs` files) is left out: it may reach anywhere.
//!
//! A path is read from `use` items and from inline `crate::`, `super::` and `self::` paths;
//! it is resolved to the deepest module file it names, and through a `pub use` of that
//! module to the file that defines the item.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const PURE_CORE: [&str; 6] = [
    "client_ip",
    "proxy_protocol",
    "allowlist",
    "decision",
    "site_binding",
    "route",
];
/// Edges that still close a cycle, each to be removed. None is left; an entry is for a
/// cycle knowingly let in while it is taken apart. The test fails on any other cycle, and on
/// an entry here that no longer exists (so the list only shrinks).
const KNOWN_CYCLE_EDGES: [(&str, &str); 0] = [];

/// Take the known cycle edges out of `graph`, failing if one is no longer there.
fn without_known(names: &[String], graph: &mut BTreeSet<(usize, usize)>) {
    for (a, b) in KNOWN_CYCLE_EDGES {
        let (Some(x), Some(y)) = (
            names.iter().position(|n| n == a),
            names.iter().position(|n| n == b),
        ) else {
            continue;
        };
        assert!(
            graph.remove(&(x, y)),
            "{a} -> {b} is gone: remove it from KNOWN_CYCLE_EDGES"
        );
    }
}

const NOT_IN_THE_CORE: [&str; 4] = ["pingora", "crate::metrics", "crate::page", "crate::proxy"];

/// One source file: its module path (`["gate"]`, `["admin", "status"]`) and its code.
struct File {
    module: Vec<String>,
    rel: String,
    code: String,
}

/// The code without comments, string and char literals (replaced by spaces), so that a path
/// in a doc comment or a message is not taken for a use.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r' && matches!(b.get(i + 1), Some(b'"' | b'#')) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            i = j + close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3; // 'x'
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The code without `#[cfg(test)]` items: the attribute and the item after it, up to its
/// `;` or its closing brace.
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

fn read_sources(dir: &Path, module: Vec<String>, out: &mut Vec<File>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name == "tests" {
                continue;
            }
            let mut m = module.clone();
            m.push(name);
            read_sources(&path, m, out);
            continue;
        }
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        if stem == "tests" || stem == "main" {
            continue;
        }
        let mut m = module.clone();
        if stem != "mod" && stem != "lib" {
            m.push(stem.to_string());
        }
        let src = std::fs::read_to_string(&path).expect("source");
        let rel = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .display()
            .to_string();
        out.push(File {
            module: m,
            rel,
            code: without_tests(&strip(&src)),
        });
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expand a `use` tree (`a::{b, c::{d, e}}`) to its paths.
fn expand(tree: &str) -> Vec<String> {
    // `x as y` names `x`: drop each alias, then the white space.
    let mut pieces = tree.split(" as ");
    let mut unaliased = pieces.next().unwrap_or("").to_string();
    for piece in pieces {
        unaliased.push_str(piece.trim_start().trim_start_matches(is_ident));
    }
    let tree: String = unaliased.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    expand_into("", &tree, &mut out);
    out
}

fn expand_into(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let head = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').expect("balanced use tree")];
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        expand_into(&format!("{prefix}{head}"), part, out);
    }
}

/// Every path a file uses: from `use` items (with whether the item is a `pub use`) and
/// inline `crate::`/`super::`/`self::` paths.
fn paths(code: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(at) = code[i..].find("use ") {
        let start = i + at;
        i = start + 4;
        let before = code[..start].trim_end();
        let boundary = start == 0 || !is_ident(bytes[start - 1] as char);
        if !boundary {
            continue;
        }
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let Some(end) = code[i..].find(';') else {
            break;
        };
        for p in expand(&code[i..i + end]) {
            out.push((p, public));
        }
        i += end;
    }
    for root in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root) {
            let start = from + at;
            from = start + root.len();
            if start > 0 && (is_ident(bytes[start - 1] as char) || bytes[start - 1] == b':') {
                continue;
            }
            let end = code[start..]
                .find(|c: char| !(is_ident(c) || c == ':'))
                .map_or(code.len(), |e| start + e);
            out.push((code[start..end].trim_end_matches(':').to_string(), false));
        }
    }
    out
}

struct Tree {
    /// Module path → file index.
    modules: BTreeMap<Vec<String>, usize>,
    /// (module, item) → the child module a `pub use child::…item` names.
    reexports: BTreeMap<(Vec<String>, String), Vec<String>>,
}

/// Absolute segments of `path` as used in a file of `module`; `None` for a path outside the
/// crate. A relative path starts at the file's own module, whether the file is a `mod.rs` or
/// a `name.rs` with its children in `name/`.
fn absolute(path: &str, module: &[String], tree: &Tree) -> Option<Vec<String>> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut base, mut rest): (Vec<String>, &[&str]) = match segs.first()? {
        &"crate" => (Vec::new(), &segs[1..]),
        &"self" => (module.to_vec(), &segs[1..]),
        &"super" => (module.to_vec(), &segs[..]),
        first => {
            // A path relative to this module (`use child::X`) or an extern crate.
            let mut candidate = module.to_vec();
            candidate.push(first.to_string());
            if tree.modules.contains_key(&candidate) {
                (module.to_vec(), &segs[..])
            } else {
                return None;
            }
        }
    };
    while let Some((&"super", tail)) = rest.split_first() {
        base.pop();
        rest = tail;
    }
    base.extend(rest.iter().map(|s| s.to_string()));
    Some(base)
}

/// The file that `segs` lands in: the deepest module named, then through its re-exports.
fn resolve(segs: &[String], tree: &Tree) -> Option<usize> {
    let mut depth = segs.len();
    while depth > 0 && !tree.modules.contains_key(&segs[..depth]) {
        depth -= 1;
    }
    let mut module = segs[..depth].to_vec();
    let mut next = segs.get(depth);
    for _ in 0..4 {
        let Some(item) = next else { break };
        let Some(child) = tree.reexports.get(&(module.clone(), item.clone())) else {
            break;
        };
        module = child.clone();
        next = Some(item);
        if !tree.modules.contains_key(&module) {
            break;
        }
    }
    tree.modules.get(&module).copied()
}

fn load() -> (Vec<File>, Tree) {
    let mut files = Vec::new();
    read_sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        Vec::new(),
        &mut files,
    );
    let mut tree = Tree {
        modules: files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect(),
        reexports: BTreeMap::new(),
    };
    let mut reexports = BTreeMap::new();
    for f in &files {
        for (p, public) in paths(&f.code) {
            if !public {
                continue;
            }
            let Some(segs) = absolute(&p, &f.module, &tree) else {
                continue;
            };
            let Some(item) = segs.last() else { continue };
            let mut depth = segs.len() - 1;
            while depth > 0 && !tree.modules.contains_key(&segs[..depth]) {
                depth -= 1;
            }
            if segs[..depth] != f.module[..] {
                reexports.insert((f.module.clone(), item.clone()), segs[..depth].to_vec());
            }
        }
    }
    tree.reexports = reexports;
    (files, tree)
}

/// File-to-file edges (by index), without self-edges.
fn edges(files: &[File], tree: &Tree) -> BTreeSet<(usize, usize)> {
    let mut out = BTreeSet::new();
    for (i, f) in files.iter().enumerate() {
        for (p, public) in paths(&f.code) {
            // A module's re-export of its own child is its interface, not a use.
            let Some(segs) = absolute(&p, &f.module, tree) else {
                continue;
            };
            if public && segs.starts_with(&f.module) {
                continue;
            }
            if let Some(j) = resolve(&segs, tree) {
                if j != i && !files[j].module.is_empty() {
                    out.insert((i, j));
                }
            }
        }
    }
    out
}

/// A cycle in the graph, as the names along it.
fn find_cycle(nodes: &[String], edges: &BTreeSet<(usize, usize)>) -> Option<Vec<String>> {
    fn visit(
        n: usize,
        edges: &BTreeSet<(usize, usize)>,
        state: &mut Vec<u8>,
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[n] = 1;
        stack.push(n);
        for &(_, m) in edges.range((n, 0)..(n + 1, 0)) {
            if state[m] == 1 {
                let from = stack.iter().position(|&s| s == m).unwrap();
                let mut cycle = stack[from..].to_vec();
                cycle.push(m);
                return Some(cycle);
            }
            if state[m] == 0 {
                if let Some(c) = visit(m, edges, state, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state[n] = 2;
        None
    }
    let mut state = vec![0u8; nodes.len()];
    for n in 0..nodes.len() {
        if state[n] == 0 {
            if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
                return Some(c.into_iter().map(|i| nodes[i].clone()).collect());
            }
        }
    }
    None
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let (files, tree) = load();
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .collect();
    names.sort();
    names.dedup();
    let index = |m: &str| names.iter().position(|n| n == m).unwrap();
    let mut graph = BTreeSet::new();
    for (a, b) in edges(&files, &tree) {
        let (Some(x), Some(y)) = (files[a].module.first(), files[b].module.first()) else {
            continue;
        };
        if x != y {
            graph.insert((index(x), index(y)));
        }
    }
    let mut shown = String::new();
    for (i, n) in names.iter().enumerate() {
        let to: Vec<&str> = graph
            .range((i, 0)..(i + 1, 0))
            .map(|&(_, j)| names[j].as_str())
            .collect();
        shown.push_str(&format!("{n} -> {}\n", to.join(", ")));
    }
    println!("{shown}");
    without_known(&names, &mut graph);
    if let Some(cycle) = find_cycle(&names, &graph) {
        panic!("module cycle: {}\n{shown}", cycle.join(" -> "));
    }
}

#[test]
fn the_files_inside_each_module_import_each_other_without_a_cycle() {
    let (files, tree) = load();
    let names: Vec<String> = files.iter().map(|f| f.rel.clone()).collect();
    let mut graph = edges(&files, &tree);
    without_known(&names, &mut graph);
    if let Some(cycle) = find_cycle(&names, &graph) {
        panic!("file cycle: {}", cycle.join(" -> "));
    }
    // The checker sees the edges it should: a few known uses.
    let has = |a: &str, b: &str| graph.iter().any(|&(x, y)| names[x] == a && names[y] == b);
    assert!(has("src/proxy.rs", "src/gate.rs"));
    assert!(has("src/admin/explain.rs", "src/admin/status.rs"));
    assert!(has("src/lifecycle/reload.rs", "src/lifecycle/local.rs"));
}

#[test]
fn the_pure_core_uses_no_pingora_metrics_or_pages() {
    let (files, _) = load();
    let mut found = Vec::new();
    for f in &files {
        if !f
            .module
            .first()
            .is_some_and(|m| PURE_CORE.contains(&m.as_str()))
        {
            continue;
        }
        for banned in NOT_IN_THE_CORE {
            let mut from = 0;
            while let Some(at) = f.code[from..].find(banned) {
                let start = from + at;
                from = start + banned.len();
                let before_ok = start == 0 || !is_ident(f.code.as_bytes()[start - 1] as char);
                let after_ok = f.code[from..].chars().next().is_none_or(|c| !is_ident(c));
                if before_ok && (after_ok || banned == "pingora") {
                    found.push(format!("{}: {banned}", f.rel));
                }
            }
        }
    }
    assert!(found.is_empty(), "the pure core reaches out: {found:#?}");
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let code = strip(
        "use crate::b::X as Y; // crate::c in a comment\nfn f() { let s = \"crate::c\"; }\n\
         #[cfg(test)]\nmod tests { use crate::c::Y; }\n",
    );
    let code = without_tests(&code);
    let found: Vec<String> = paths(&code).into_iter().map(|(p, _)| p).collect();
    assert_eq!(found, ["crate::b::X", "crate::b::X"]);
    assert_eq!(
        expand("crate::{a::{B, C}, d}"),
        ["crate::a::B", "crate::a::C", "crate::d"]
    );
    let nodes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let cyclic: BTreeSet<(usize, usize)> = [(0, 1), (1, 2), (2, 0)].into();
    assert_eq!(
        find_cycle(&nodes, &cyclic),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
    let acyclic: BTreeSet<(usize, usize)> = [(0, 1), (1, 2), (0, 2)].into();
    assert_eq!(find_cycle(&nodes, &acyclic), None);
}

#[test]
fn a_relative_path_starts_at_the_files_own_module() {
    let module = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let tree = Tree {
        modules: [
            (module(&[]), 0),
            (module(&["config"]), 1),
            (module(&["decision"]), 2),
            (module(&["decision", "config"]), 3),
        ]
        .into(),
        reexports: BTreeMap::new(),
    };
    // `use config::X` in src/decision.rs names decision/config.rs, not the top-level config.
    assert_eq!(
        absolute("config::X", &module(&["decision"]), &tree),
        Some(module(&["decision", "config", "X"]))
    );
    assert_eq!(
        absolute("super::Mode", &module(&["decision", "config"]), &tree),
        Some(module(&["decision", "Mode"]))
    );
    assert_eq!(
        absolute("crate::config::X", &module(&["decision"]), &tree),
        Some(module(&["config", "X"]))
    );
    // Neither a child nor `crate`/`self`/`super`: an extern crate.
    assert_eq!(
        absolute("serde::Deserialize", &module(&["decision"]), &tree),
        None
    );
}
