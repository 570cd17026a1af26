//! The documentation keeps up with the code: every config key the parser accepts is in
//! docs/configuration.md, the README stays short and starts with the two commands, and
//! relative links in the Markdown files lead somewhere.
//!
//! The config keys are discovered from the real parser, not from its source: a table given
//! an unknown key is refused with the list of keys it accepts (`deny_unknown_fields`), so
//! probing each table, and each key of it as a possible nested table, finds them all however
//! the config types are arranged in modules.

use poortwachter::config::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const PROBE: &str = "__probe";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One step from the file's root to a table: a table key, or the entries of an array of
/// tables (`[[route]]`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Table(String),
    Array(String),
}

/// How docs/configuration.md names a table in its heading: `[allowlist.max_prefix]`,
/// `[[site_binding.key]]`; the file's root is the empty path.
fn heading(path: &[Step]) -> String {
    let names: Vec<&str> = path
        .iter()
        .map(|s| match s {
            Step::Table(n) | Step::Array(n) => n.as_str(),
        })
        .collect();
    match path.last() {
        Some(Step::Array(_)) => format!("[[{}]]", names.join(".")),
        _ => format!("[{}]", names.join(".")),
    }
}

/// The shipped example config: valid, so the only fault in a probe is the probe.
fn base() -> toml::Table {
    read("config/poortwachter.toml")
        .parse()
        .expect("config/poortwachter.toml is TOML")
}

/// `base` with the table at `path` created where missing and `leaf` put into it as `PROBE`,
/// or with `leaf` in place of the value of `key` when given.
fn probe_doc(path: &[Step], key: Option<&str>, leaf: toml::Value) -> String {
    let mut doc = base();
    let mut table = &mut doc;
    for step in path {
        table = match step {
            Step::Table(name) => {
                let v = table
                    .entry(name.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if !v.is_table() {
                    *v = toml::Value::Table(toml::Table::new());
                }
                v.as_table_mut().unwrap()
            }
            Step::Array(name) => {
                let v = table
                    .entry(name.clone())
                    .or_insert_with(|| toml::Value::Array(Vec::new()));
                let ok = v
                    .as_array()
                    .is_some_and(|a| a.first().is_some_and(|e| e.is_table()));
                if !ok {
                    *v = toml::Value::Array(vec![toml::Value::Table(toml::Table::new())]);
                }
                v.as_array_mut().unwrap()[0].as_table_mut().unwrap()
            }
        };
    }
    table.insert(key.unwrap_or(PROBE).to_string(), leaf);
    toml::to_string(&doc).expect("serialise the probe")
}

/// The keys the parser named as accepted when it refused `PROBE`, or `None` when it refused
/// the document for another reason (the probed value is not a table of fixed keys).
fn accepted_keys(doc: &str) -> Option<BTreeSet<String>> {
    let err = match Config::from_toml(Path::new("probe.toml"), doc) {
        Ok(_) => return None,
        Err(e) => e.to_string(),
    };
    let at = err.find(&format!("unknown field `{PROBE}`"))?;
    let rest = &err[at + PROBE.len() + "unknown field ``".len()..];
    // "…, expected one of `a`, `b`" / "…, expected `a`" / "…, there are no fields"; the
    // list ends with its line (whether the error's lines are joined with " | " or not).
    let rest = rest.split(['\n', '|']).next().unwrap_or(rest);
    let keys: BTreeSet<String> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some(keys)
}

/// Every table the parser accepts, with its keys; nested tables and arrays of tables are
/// found by offering each key a table, then an array of one table.
fn accepted_tables() -> BTreeMap<Vec<Step>, BTreeSet<String>> {
    let probe = || {
        toml::Value::Table(toml::Table::from_iter([(
            PROBE.to_string(),
            toml::Value::Integer(1),
        )]))
    };
    let mut out = BTreeMap::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let keys = accepted_keys(&probe_doc(&path, None, toml::Value::Integer(1)))
            .unwrap_or_else(|| panic!("{}: refused no unknown key", heading(&path)));
        for key in &keys {
            if accepted_keys(&probe_doc(&path, Some(key), probe())).is_some() {
                let mut p = path.clone();
                p.push(Step::Table(key.clone()));
                todo.push(p);
            } else if accepted_keys(&probe_doc(
                &path,
                Some(key),
                toml::Value::Array(vec![probe()]),
            ))
            .is_some()
            {
                let mut p = path.clone();
                p.push(Step::Array(key.clone()));
                todo.push(p);
            }
        }
        out.insert(path, keys);
    }
    out
}

/// The (table heading, key) pairs written in a TOML file: a cross-check that the probe sees
/// at least what the shipped configs use.
fn used_keys(
    table: &toml::Table,
    path: &mut Vec<Step>,
    out: &mut BTreeSet<(String, String)>,
    maps: &BTreeSet<(String, String)>,
) {
    for (key, value) in table {
        out.insert((heading(path), key.clone()));
        if maps.contains(&(heading(path), key.clone())) {
            continue;
        }
        match value {
            toml::Value::Table(t) => {
                path.push(Step::Table(key.clone()));
                used_keys(t, path, out, maps);
                path.pop();
            }
            toml::Value::Array(a) => {
                for t in a.iter().filter_map(toml::Value::as_table) {
                    path.push(Step::Array(key.clone()));
                    used_keys(t, path, out, maps);
                    path.pop();
                }
            }
            _ => {}
        }
    }
}

/// docs/configuration.md as heading → the keys in backticks in the first cell of its
/// table rows.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in read("docs/configuration.md").lines() {
        if let Some(h) = line.strip_prefix("## ") {
            let h = h.trim().trim_matches('`').to_string();
            current = h.starts_with('[').then_some(h.clone());
            if let Some(h) = &current {
                out.entry(h.clone()).or_default();
            }
        } else if line.starts_with("# ") {
            current = None;
        } else if let (Some(h), Some(row)) = (&current, line.strip_prefix('|')) {
            let cell = row.split('|').next().unwrap_or("");
            let keys = cell.split('`').skip(1).step_by(2).map(str::to_string);
            out.get_mut(h).unwrap().extend(keys);
        }
    }
    out
}

#[test]
fn every_accepted_config_key_is_documented() {
    let tables = accepted_tables();
    let pairs: BTreeSet<(String, String)> = tables
        .iter()
        .flat_map(|(p, keys)| keys.iter().map(move |k| (heading(p), k.clone())))
        .collect();

    // The probe must see what the shipped configs use, or it proves nothing.
    let tables_ref = &tables;
    let table_keys: BTreeSet<(String, String)> = tables
        .iter()
        .flat_map(|(p, keys)| {
            keys.iter().filter_map(move |k| {
                let mut q = p.clone();
                q.push(Step::Table(k.clone()));
                let mut a = p.clone();
                a.push(Step::Array(k.clone()));
                (!tables_ref.contains_key(&q) && !tables_ref.contains_key(&a))
                    .then(|| (heading(p), k.clone()))
            })
        })
        .collect();
    let mut used = BTreeSet::new();
    for file in [
        "config/poortwachter.toml",
        "config/report-only.toml",
        "config/school-policy.toml",
        "deploy/systemd/poortwachter.toml",
    ] {
        let t: toml::Table = read(file).parse().unwrap();
        used_keys(&t, &mut Vec::new(), &mut used, &table_keys);
    }
    let unseen: Vec<_> = used.difference(&pairs).collect();
    assert!(
        unseen.is_empty(),
        "the probe missed keys the shipped configs use: {unseen:?}"
    );

    let docs = documented();
    let mut missing = Vec::new();
    for (path, keys) in &tables {
        let h = heading(path);
        if path.is_empty() {
            // The root's keys are the sections, each a table with its own heading.
            continue;
        }
        match docs.get(&h) {
            None => missing.push(format!("heading `## {h}` (keys {keys:?})")),
            Some(doc_keys) => missing.extend(
                keys.iter()
                    .filter(|k| !doc_keys.contains(*k))
                    .map(|k| format!("`{k}` under `## {h}`")),
            ),
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document these accepted config keys:\n  {}",
        missing.join("\n  ")
    );
}

const FIRST_COMMANDS: &str =
    "deploy/ensure-build-deps && cargo run -- run --config config/poortwachter.toml\n\
                              deploy/ensure-build-deps && cargo test\n";

#[test]
fn readme_is_short_and_starts_with_the_two_commands() {
    let readme = read("README.md");
    assert!(
        readme.len() <= 10 * 1024,
        "README.md is {} bytes; at most 10240",
        readme.len()
    );
    // Only the title may come before the commands.
    let (before, block) = readme
        .split_once("```sh\n")
        .expect("README.md has a ```sh block");
    assert!(
        before
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with("# ")),
        "README.md has text before its first commands: {before:?}"
    );
    let block = block.split("```").next().unwrap();
    assert_eq!(block, FIRST_COMMANDS, "README.md's first commands changed");
}

/// The Markdown files whose links are checked.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![root().join("README.md"), root().join("benches/README.md")];
    for dir in ["docs", "deploy"] {
        if root().join(dir).is_dir() {
            walk(&root().join(dir), &mut out);
        }
    }
    out
}

/// The lines of Markdown text outside fenced code blocks (the fence lines included).
fn outside_code_blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        !fenced
    })
}

/// The anchors a Markdown file offers: GitHub's heading slugs and `<a id="…">`.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in outside_code_blocks(text) {
        for part in line.split("<a id=\"").skip(1) {
            if let Some((id, _)) = part.split_once('"') {
                out.insert(id.to_string());
            }
        }
        let Some(h) = line.strip_prefix('#') else {
            continue;
        };
        let h = h.trim_start_matches('#');
        if !h.starts_with(' ') {
            continue;
        }
        let slug: String = h
            .trim()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                '-' | '_' => Some(c),
                c if c.is_alphanumeric() => Some(c.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// Relative link targets in Markdown text: `](target)`, outside code blocks and spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in outside_code_blocks(text) {
        // Drop code spans, so `a](b)` inside backticks is not a link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for part in prose.split("](").skip(1) {
            if let Some((target, _)) = part.split_once(')') {
                let target = target.split_whitespace().next().unwrap_or("");
                if !target.contains("://") && !target.starts_with("mailto:") {
                    out.push(target.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn relative_links_in_the_docs_lead_somewhere() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        for link in links(&text) {
            let (path, anchor) = match link.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{name}: {link} (no such file)"));
                continue;
            }
            if let Some(anchor) = anchor {
                let ok = target.extension().is_some_and(|e| e == "md")
                    && anchors(&std::fs::read_to_string(&target).unwrap()).contains(anchor);
                if !ok {
                    broken.push(format!("{name}: {link} (no such anchor)"));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}
