//! Architecture checks: the invariants ARCHITECTURE.md states, read from the source files.
//!
//! Each check discovers the workspace from the file system (the members of the root
//! `Cargo.toml` and the `.rs` files under each one's `src/`), so a new crate or module is checked
//! without editing this file. The parsing is textual and leans on rustfmt's layout (a function's
//! closing brace alone on a line at the function's indentation), which `cargo fmt --check` in CI
//! guarantees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a production function may be without a comment saying why.
const FUNCTION_LINES_MAX: usize = 70;

/// Marks a function allowed to be longer, on the line before its `fn` (or before its attributes):
/// `// long-function: <why>`, for example a transcription of an RFC's algorithm kept step by step.
const LONG_FUNCTION_MARKER: &str = "// long-function:";

/// Workspace members that ship nothing: their code is not held to the production rules.
const NOT_PRODUCTION: &[&str] = &["load-tests"];

/// A workspace crate: its directory relative to the root ("" for the root package) and its files.
struct Crate {
    directory: String,
    sources: Vec<SourceFile>,
}

/// One `.rs` file: its path relative to the workspace root, its module path inside its crate
/// (empty for a crate root), and its production text (test-only items blanked out).
struct SourceFile {
    path: String,
    module: Vec<String>,
    production: String,
    test_only: bool,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `members` of the root manifest's `[workspace]`.
fn workspace_members() -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let start = manifest
        .find("members")
        .expect("the root Cargo.toml lists workspace members");
    let list = &manifest[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|member| member.trim().trim_matches('"').to_string())
        .filter(|member| !member.is_empty())
        .map(|member| if member == "." { String::new() } else { member })
        .collect()
}

fn workspace_crates() -> Vec<Crate> {
    workspace_members()
        .into_iter()
        .map(|directory| {
            let source_root = root().join(&directory).join("src");
            let mut files = Vec::new();
            collect_rust_files(&source_root, &mut files);
            files.sort();
            let test_only_modules = test_only_module_files(&files, &source_root);
            let sources = files
                .iter()
                .map(|file| read_source(file, &source_root, &test_only_modules))
                .collect();
            Crate { directory, sources }
        })
        .collect()
}

fn collect_rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// The module path of a file: `http/commands.rs` is `http::commands`, `store/mod.rs` is `store`,
/// `lib.rs`, `main.rs` and `bin/*.rs` are crate roots.
fn module_path(file: &Path, source_root: &Path) -> Vec<String> {
    let relative = file.strip_prefix(source_root).unwrap();
    let mut segments: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segments.first().is_some_and(|first| first == "bin")
        || segments == ["lib"]
        || segments == ["main"]
    {
        return Vec::new();
    }
    if segments.last().is_some_and(|last| last == "mod") {
        segments.pop();
    }
    segments
}

/// Files whose parent declares them `#[cfg(test)] mod name;`.
fn test_only_module_files(files: &[PathBuf], source_root: &Path) -> BTreeSet<Vec<String>> {
    let mut test_only = BTreeSet::new();
    for file in files {
        let parent = module_path(file, source_root);
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            let declaration = pair[1].trim();
            if pair[0].trim() == "#[cfg(test)]" && declaration.starts_with("mod ") {
                if let Some(name) = declaration
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'))
                {
                    let mut child = parent.clone();
                    child.push(name.to_string());
                    test_only.insert(child);
                }
            }
        }
    }
    test_only
}

fn read_source(
    file: &Path,
    source_root: &Path,
    test_only_modules: &BTreeSet<Vec<String>>,
) -> SourceFile {
    let module = module_path(file, source_root);
    let text = std::fs::read_to_string(file).unwrap();
    let test_only = test_only_modules
        .iter()
        .any(|test| module.starts_with(test));
    SourceFile {
        path: file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/"),
        module,
        production: if test_only {
            String::new()
        } else {
            without_test_items(&text)
        },
        test_only,
    }
}

/// The text with every `#[cfg(test)]` item blanked (lines kept, so line numbers still hold):
/// a `mod tests { … }` ends at the closing brace alone on a line at its own indentation.
fn without_test_items(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::with_capacity(lines.len());
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        if line.trim() != "#[cfg(test)]" {
            kept.push(line);
            index += 1;
            continue;
        }
        let indentation = &line[..line.len() - line.trim_start().len()];
        let closing = format!("{indentation}}}");
        let mut end = index + 1;
        while end < lines.len() && lines[end].trim_start().starts_with("#[") {
            end += 1;
        }
        let item = lines.get(end).map_or("", |item| item.trim_end());
        if !item.ends_with(';') && !item.ends_with('}') {
            while end < lines.len() && lines[end].trim_end() != closing {
                end += 1;
            }
        }
        let blanked = end.min(lines.len() - 1) + 1 - index;
        kept.extend(std::iter::repeat_n("", blanked));
        index = end + 1;
    }
    kept.join("\n")
}

/// A line without its `//` comment (doc comments included). A `//` inside a string literal cuts
/// the string short, which only ever hides text from these checks, never invents any.
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(start) => &line[..start],
        None => line,
    }
}

fn production_files(crates: &[Crate]) -> impl Iterator<Item = &SourceFile> {
    crates
        .iter()
        .filter(|krate| !NOT_PRODUCTION.contains(&krate.directory.as_str()))
        .flat_map(|krate| krate.sources.iter())
        .filter(|source| !source.test_only)
}

// ---------------------------------------------------------------------------------------------
// The code map names every module, and none that is gone.

/// The paths ARCHITECTURE.md's code map names, resolved against the files they stand for.
///
/// Under a `### \`crate/\`` heading, a bullet's first backticked path is its module; a path with a
/// `/` is relative to the crate's `src/`; a bare file name is relative to the bullet's directory
/// when the bullet is a directory (`http/` then `commands.rs`), else to `src/`; a nested bullet's
/// directory is relative to its parent bullet's (`ledger/`, then `  - rules/`). A directory names
/// its `mod.rs`.
fn code_map_paths() -> Vec<String> {
    let document = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = document
        .find("\n## Code map")
        .expect("ARCHITECTURE.md has a Code map");
    let section = &document[start + 1..];
    let section = &section[..section[1..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 1)];
    let mut named = Vec::new();
    let mut source_root: Option<String> = None;
    let mut bullet_directory = String::new();
    // The directory of each open bullet, by depth (two spaces a level).
    let mut directories: Vec<String> = Vec::new();
    for line in section.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            source_root = backticked_paths(heading).first().map(|crate_path| {
                let directory = crate_path.trim_end_matches('/');
                if root().join(directory).join("src").is_dir() {
                    format!("{directory}/src/")
                } else {
                    format!("{directory}/")
                }
            });
            continue;
        }
        let Some(source_root) = &source_root else {
            continue;
        };
        let paths = backticked_paths(line);
        let trimmed = line.trim_start();
        let bullet = trimmed.starts_with("- ");
        let mut parent = String::new();
        if bullet {
            directories.truncate((line.len() - trimmed.len()) / 2);
            parent = directories.last().cloned().unwrap_or_default();
            bullet_directory = match paths.first().filter(|first| first.ends_with('/')) {
                Some(directory) => format!("{parent}{directory}"),
                None => parent.clone(),
            };
            directories.push(bullet_directory.clone());
        }
        for (index, path) in paths.into_iter().enumerate() {
            let relative = if bullet && index == 0 && path.ends_with('/') {
                format!("{parent}{path}")
            } else if path.contains('/') {
                path
            } else {
                format!("{bullet_directory}{path}")
            };
            named.push(format!("{source_root}{relative}"));
        }
    }
    named
}

/// Backticked spans that look like a source path: `name.rs`, `dir/`, `dir/name.rs`.
fn backticked_paths(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            !span.is_empty()
                && !span.starts_with('/')
                && (span.ends_with(".rs") || span.ends_with('/'))
                && span
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_code_map_names_every_module_and_none_that_is_gone() {
    let named: BTreeSet<String> = code_map_paths()
        .into_iter()
        .map(|path| {
            if path.ends_with('/') && root().join(&path).join("mod.rs").is_file() {
                format!("{path}mod.rs")
            } else {
                path
            }
        })
        .collect();
    let gone: Vec<&String> = named
        .iter()
        .filter(|path| !root().join(path.as_str()).exists())
        .collect();
    let crates = workspace_crates();
    let unnamed: Vec<&str> = crates
        .iter()
        .flat_map(|krate| krate.sources.iter())
        .filter(|source| {
            !source.path.ends_with("src/lib.rs") && !source.path.ends_with("src/main.rs")
        })
        .map(|source| source.path.as_str())
        .filter(|path| !named.contains(*path))
        .collect();
    assert!(
        gone.is_empty() && unnamed.is_empty(),
        "ARCHITECTURE.md's code map names files that do not exist: {gone:?}; \
         and misses these modules: {unnamed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// No import cycles between modules.

/// A crate's module graph: each top-level module (`http::*` folded into `http`) and the modules
/// it names through `crate::` or `super::` paths, with the files that name them.
type ModuleGraph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn module_graph(krate: &Crate) -> ModuleGraph {
    let top_level: BTreeSet<&str> = krate
        .sources
        .iter()
        .filter_map(|source| source.module.first().map(String::as_str))
        .collect();
    let re_exports = crate_root_re_exports(krate);
    let mut graph = ModuleGraph::new();
    for source in krate.sources.iter().filter(|source| !source.test_only) {
        let Some(from) = source.module.first() else {
            continue;
        };
        let code = code_text(&source.production);
        for name in referenced_top_level_names(&code, &source.module) {
            let target = if top_level.contains(name.as_str()) {
                Some(name)
            } else {
                re_exports.get(&name).cloned()
            };
            if let Some(target) = target.filter(|target| target != from) {
                add_edge(&mut graph, from, target, &source.path);
            }
        }
    }
    graph
}

/// Records that `path`, in module `from`, names module `to`.
fn add_edge(graph: &mut ModuleGraph, from: &str, to: String, path: &str) {
    graph
        .entry(from.to_string())
        .or_default()
        .entry(to)
        .or_default()
        .insert(path.to_string());
}

/// The text without comments.
fn code_text(text: &str) -> String {
    text.lines().map(code_of).collect::<Vec<_>>().join("\n")
}

/// Names re-exported by the crate root (`pub use ledger::{Ledger, Refusal};`), with the module
/// they come from, so `crate::Ledger` counts as naming `ledger`.
fn crate_root_re_exports(krate: &Crate) -> BTreeMap<String, String> {
    let mut re_exports = BTreeMap::new();
    for source in krate
        .sources
        .iter()
        .filter(|source| source.module.is_empty())
    {
        for statement in code_text(&source.production).split(';') {
            let Some(path) = statement.trim().strip_prefix("pub use ") else {
                continue;
            };
            let path = path
                .trim_start_matches("crate::")
                .trim_start_matches("self::");
            let Some((module, rest)) = path.split_once("::") else {
                continue;
            };
            for name in rest.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if !name.is_empty() {
                    re_exports.insert(name.to_string(), module.to_string());
                }
            }
        }
    }
    re_exports
}

/// The first segment below the crate root of every `crate::…` and `super::…` path in `code`,
/// seen from the module `module` (brace groups `crate::{a, b::c}` give each member).
fn referenced_top_level_names(code: &str, module: &[String]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (base, remainder) in path_starts(code, module) {
        match base.first() {
            Some(top) => {
                names.insert(top.clone());
            }
            None => names.extend(first_segments(remainder)),
        }
    }
    names
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The first identifier of a path's remainder, or of each member of a brace group.
fn first_segments(remainder: &str) -> Vec<String> {
    let identifier = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = remainder.strip_prefix('{') else {
        return vec![identifier(remainder)];
    };
    let mut members = Vec::new();
    let mut depth = 0;
    let mut member_start = 0;
    for (offset, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                members.push(identifier(&group[member_start..offset]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(identifier(&group[member_start..offset]));
                member_start = offset + 1;
            }
            _ => {}
        }
    }
    members.retain(|member| !member.is_empty() && member != "self");
    members
}

/// The graph one level down, inside each folder module (`projections::ledger`): each child module
/// is a node (`ledger::keys`), and so, with `with_parent`, is the folder's own file (`ledger`). A
/// child that names an item of its parent (`super::Ledger`) depends on the parent; the parent
/// depends on a child it names (`keys::Keys`). Siblings never form a cycle anywhere; in the pure
/// crate the parent counts too, so the aggregates can read each other but never the ledger that
/// composes them. (Elsewhere a folder's file may hold the trait its children implement and
/// construct them, as `store` does.)
fn submodule_graph(krate: &Crate, with_parent: bool) -> ModuleGraph {
    let mut children: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for source in &krate.sources {
        if let [parent, child, ..] = source.module.as_slice() {
            children.entry(parent).or_default().insert(child);
        }
    }
    let mut graph = ModuleGraph::new();
    for source in krate.sources.iter().filter(|source| !source.test_only) {
        let Some(parent) = source.module.first() else {
            continue;
        };
        let Some(siblings) = children.get(parent.as_str()) else {
            continue;
        };
        let node = |child: Option<&String>| match child {
            Some(child) if siblings.contains(child.as_str()) => format!("{parent}::{child}"),
            _ => parent.clone(),
        };
        let from = node(source.module.get(1));
        let code = code_text(&source.production);
        let mut targets: BTreeSet<String> = referenced_paths(&code, &source.module)
            .into_iter()
            .filter(|path| path.first() == Some(parent))
            .map(|path| node(path.get(1)))
            .collect();
        if source.module.len() == 1 {
            targets.extend(
                siblings
                    .iter()
                    .filter(|child| names_relative_path(&code, child))
                    .map(|child| format!("{parent}::{child}")),
            );
        }
        let counted = |node: &String| with_parent || node != parent;
        if !counted(&from) {
            continue;
        }
        for target in targets
            .into_iter()
            .filter(|target| *target != from && counted(target))
        {
            add_edge(&mut graph, &from, target, &source.path);
        }
    }
    graph
}

/// Whether `code` names `child::…` as a path of its own (not `other::child::…`).
fn names_relative_path(code: &str, child: &str) -> bool {
    let needle = format!("{child}::");
    code.match_indices(&needle).any(|(index, _)| {
        let before = &code[..index];
        !before.ends_with("::") && !before.bytes().last().is_some_and(is_identifier_byte)
    })
}

/// The first two segments below the crate root of every `crate::…` and `super::…` path in
/// `code`, seen from `module` (brace groups give each member).
fn referenced_paths(code: &str, module: &[String]) -> BTreeSet<Vec<String>> {
    let mut paths = BTreeSet::new();
    for (base, remainder) in path_starts(code, module) {
        match base.as_slice() {
            [] => {
                for first in first_segments(remainder) {
                    let after = remainder
                        .trim_start()
                        .strip_prefix(first.as_str())
                        .and_then(|rest| rest.strip_prefix("::"));
                    push_with_seconds(&mut paths, vec![first], after);
                }
            }
            [top] => push_with_seconds(&mut paths, vec![top.clone()], Some(remainder)),
            [top, second, ..] => {
                paths.insert(vec![top.clone(), second.clone()]);
            }
        }
    }
    paths
}

fn push_with_seconds(paths: &mut BTreeSet<Vec<String>>, prefix: Vec<String>, rest: Option<&str>) {
    let seconds = rest.map(first_segments).unwrap_or_default();
    if seconds.is_empty() {
        paths.insert(prefix.clone());
    }
    for second in seconds {
        let mut path = prefix.clone();
        path.push(second);
        paths.insert(path);
    }
}

/// Each `crate::` or `super::` path in `code`: the module it starts from and the text after.
fn path_starts<'a>(code: &'a str, module: &[String]) -> Vec<(Vec<String>, &'a str)> {
    let bytes = code.as_bytes();
    let mut starts = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let rest = &bytes[index..];
        let starts_path = index == 0 || !is_identifier_byte(bytes[index - 1]);
        if starts_path && rest.starts_with(b"crate::") {
            index += "crate::".len();
            starts.push((Vec::new(), &code[index..]));
        } else if starts_path && rest.starts_with(b"super::") {
            let mut base = module.to_vec();
            while bytes[index..].starts_with(b"super::") {
                base.pop();
                index += "super::".len();
            }
            starts.push((base, &code[index..]));
        } else {
            index += 1;
        }
    }
    starts
}

/// The strongly connected components of more than one module (Tarjan's algorithm).
fn cycles(graph: &ModuleGraph) -> Vec<Vec<String>> {
    struct Search<'a> {
        graph: &'a ModuleGraph,
        order: BTreeMap<&'a str, usize>,
        lowest: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        components: Vec<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a str) {
            let number = self.order.len();
            self.order.insert(node, number);
            self.lowest.insert(node, number);
            self.stack.push(node);
            for next in self
                .graph
                .get(node)
                .into_iter()
                .flat_map(|edges| edges.keys())
            {
                if !self.order.contains_key(next.as_str()) {
                    self.visit(next);
                    let lowest = self.lowest[node].min(self.lowest[next.as_str()]);
                    self.lowest.insert(node, lowest);
                } else if self.stack.contains(&next.as_str()) {
                    let lowest = self.lowest[node].min(self.order[next.as_str()]);
                    self.lowest.insert(node, lowest);
                }
            }
            if self.lowest[node] == self.order[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    component.push(member.to_string());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.components.push(component);
                }
            }
        }
    }
    let mut search = Search {
        graph,
        order: BTreeMap::new(),
        lowest: BTreeMap::new(),
        stack: Vec::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !search.order.contains_key(node.as_str()) {
            search.visit(node);
        }
    }
    search.components
}

fn crate_name(krate: &Crate) -> &str {
    if krate.directory.is_empty() {
        "veche"
    } else {
        &krate.directory
    }
}

#[test]
fn the_import_graph_between_modules_has_no_cycles() {
    let mut found = Vec::new();
    for krate in workspace_crates() {
        let pure = crate_name(&krate) == "projections";
        for graph in [module_graph(&krate), submodule_graph(&krate, pure)] {
            for component in cycles(&graph) {
                let mut edges = Vec::new();
                for from in &component {
                    for (to, files) in &graph[from] {
                        if component.contains(to) {
                            edges.push(format!("{from} -> {to} ({})", join(files)));
                        }
                    }
                }
                let name = format!("{}: {{{}}}", crate_name(&krate), component.join(", "));
                found.push((name, edges.join("; ")));
            }
        }
    }
    let found: Vec<String> = found
        .iter()
        .map(|(name, edges)| format!("{name} through {edges}"))
        .collect();
    assert!(
        found.is_empty(),
        "import cycles between modules:\n  {}",
        found.join("\n  ")
    );
}

fn join(items: &BTreeSet<String>) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------------
// Only `src/http` names actix or utoipa.

/// The files allowed to name actix-web or utoipa: the HTTP layer (see ARCHITECTURE.md's API
/// boundaries).
fn may_name_the_web_framework(path: &str) -> bool {
    path.starts_with("src/http/")
}

#[test]
fn only_the_http_module_names_actix_or_utoipa() {
    let crates = workspace_crates();
    let mut found = Vec::new();
    for source in production_files(&crates) {
        if may_name_the_web_framework(&source.path) {
            continue;
        }
        for (number, line) in source.production.lines().enumerate() {
            let names_it = code_of(line)
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word.starts_with("actix") || word.starts_with("utoipa"));
            if names_it {
                found.push(format!("{}:{}: {}", source.path, number + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "actix or utoipa named outside src/http ({} lines):\n  {}",
        found.len(),
        found.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Every limit lives in `limits.rs`.

/// Integer constants that a format or another specification defines: changing one changes what
/// veche's bytes mean, so they are not tunable limits and stay beside the code that speaks it.
const NOT_LIMITS: &[(&str, &str)] = &[
    (
        "ED25519_SIGNATURE_TYPE",
        "C2SP signed-note signature type byte",
    ),
    ("LEAF_PREFIX", "RFC 6962 leaf hash domain separator"),
    ("NODE_PREFIX", "RFC 6962 interior node domain separator"),
    (
        "ENTRY_VERSION",
        "the entry format's version byte (PROTOCOL.md)",
    ),
    (
        "ENTRY_HEADER_BYTES",
        "the entry header's layout (PROTOCOL.md)",
    ),
    ("HASH_BYTES", "SHA-256's output size"),
    ("RANDOMIZER_BYTES", "RFC 9474's message randomizer length"),
    (
        "PUBLIC_EXPONENT",
        "the RSA public exponent issuer keys use (PROTOCOL.md)",
    ),
    (
        "SALT_BYTES",
        "a content commitment's fixed salt length (PROTOCOL.md)",
    ),
    (
        "APPEND_LOCK_KEY",
        "an identifier: PostgreSQL's advisory lock key",
    ),
    ("DAY_MS", "a unit: milliseconds in a day"),
    ("RFC3339_LAST_MS", "RFC 3339's last representable instant"),
    ("TILE_HEIGHT", "C2SP tlog-tiles: a tile spans 8 tree levels"),
    (
        "TILE_WIDTH",
        "C2SP tlog-tiles: a full tile holds 256 hashes",
    ),
    (
        "INCLUSION_PROOF_HASHES_MAX",
        "a fact of u64 tree sizes: at most 64 hashes",
    ),
    ("HEIGHT_MAX", "a fact of u64 tree sizes: heights 0 to 63"),
    (
        "LEVEL_MAX",
        "C2SP tlog-tiles: the highest level a path may name",
    ),
    ("LEVELS_IN_USE", "a fact of u64 tree sizes: 256^8 = 2^64"),
];

const INTEGER_TYPES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
];

/// A declaration without its `pub`, `pub(crate)` or `pub(in …)` (`None` if the scope never
/// closes on the line).
fn without_visibility(declaration: &str) -> Option<&str> {
    let Some(rest) = declaration.strip_prefix("pub") else {
        return Some(declaration);
    };
    if let Some(scoped) = rest.strip_prefix('(') {
        return Some(scoped.split_once(')')?.1.trim_start());
    }
    match rest.strip_prefix(' ') {
        Some(public) => Some(public.trim_start()),
        None => Some(declaration),
    }
}

/// `const NAME: <integer type> = <number…>` with any visibility, or `None`.
fn integer_constant(line: &str) -> Option<&str> {
    let declaration = without_visibility(code_of(line).trim())?;
    let (name, rest) = declaration.strip_prefix("const ")?.split_once(':')?;
    let (kind, value) = rest.split_once('=')?;
    let is_number = value.trim_start().starts_with(|c: char| c.is_ascii_digit());
    (INTEGER_TYPES.contains(&kind.trim()) && is_number).then_some(name.trim())
}

#[test]
fn every_limit_is_written_in_limits_rs_and_nowhere_else() {
    let crates = workspace_crates();
    let mut found = Vec::new();
    for source in production_files(&crates) {
        if source.path == "projections/src/limits.rs" {
            continue;
        }
        for (number, line) in source.production.lines().enumerate() {
            let name = integer_constant(line)
                .filter(|name| !NOT_LIMITS.iter().any(|(defined, _)| defined == name));
            if let Some(name) = name {
                found.push(format!("{}:{}: {name}", source.path, number + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "integer constants outside projections/src/limits.rs ({}):\n  {}",
        found.len(),
        found.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// No production function is longer than 70 lines unless a comment says why.

struct LongFunction {
    place: String,
    name: String,
    lines: usize,
}

/// The name of the function a line declares, if it declares one.
fn declared_function(line: &str) -> Option<&str> {
    let mut declaration = without_visibility(code_of(line).trim_start())?;
    for qualifier in ["const ", "async ", "unsafe ", "extern \"C\" "] {
        declaration = declaration.strip_prefix(qualifier).unwrap_or(declaration);
    }
    let name = declaration.strip_prefix("fn ")?;
    name.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
}

/// Whether the comment and attribute lines right above line `index` carry the marker.
fn marked_long(lines: &[&str], index: usize) -> bool {
    lines[..index]
        .iter()
        .rev()
        .take_while(|line| {
            let line = line.trim_start();
            line.starts_with("//") || line.starts_with("#[")
        })
        .any(|line| {
            line.trim_start()
                .strip_prefix(LONG_FUNCTION_MARKER)
                .is_some_and(|why| !why.trim().is_empty())
        })
}

fn long_functions(source: &SourceFile) -> Vec<LongFunction> {
    let lines: Vec<&str> = source.production.lines().collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(name) = declared_function(line) else {
            continue;
        };
        let Some(opening) = (index..lines.len()).find(|&at| {
            let code = code_of(lines[at]).trim_end();
            code.ends_with('{') || code.ends_with(';') || code.ends_with('}')
        }) else {
            continue;
        };
        if !code_of(lines[opening]).trim_end().ends_with('{') {
            continue;
        }
        let indentation = &line[..line.len() - line.trim_start().len()];
        let closing = format!("{indentation}}}");
        let Some(end) = (opening..lines.len()).find(|&at| lines[at].trim_end() == closing) else {
            continue;
        };
        let length = end - index + 1;
        if length > FUNCTION_LINES_MAX && !marked_long(&lines, index) {
            found.push(LongFunction {
                place: format!("{}:{}", source.path, index + 1),
                name: name.to_string(),
                lines: length,
            });
        }
    }
    found
}

#[test]
fn no_production_function_is_longer_than_70_lines_unless_a_comment_says_why() {
    let crates = workspace_crates();
    let mut found: Vec<LongFunction> = production_files(&crates).flat_map(long_functions).collect();
    found.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.place.cmp(&b.place)));
    let listing: Vec<String> = found
        .iter()
        .map(|function| {
            format!(
                "{} lines  {}  {}",
                function.lines, function.name, function.place
            )
        })
        .collect();
    assert!(
        found.is_empty(),
        "{} production functions are longer than {FUNCTION_LINES_MAX} lines without a \
         `{LONG_FUNCTION_MARKER} <why>` comment before them:\n  {}",
        found.len(),
        listing.join("\n  ")
    );
}
