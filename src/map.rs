//! src/README.md's map as a test (issue 32): every file's references into the crate, read from
//! its text, against the map's "must not import" column and the crates and modules only some
//! folders may use; and no cycle between files.
//!
//! What counts as an import of file A by file B: a `use` (groups expanded, `super::`/`self::`
//! and a child module's name resolved) or a `crate::…` path anywhere in B's code, resolved to
//! the file that defines the item, through the `pub use` re-exports of a folder's front door.
//! Comments, string literals and `#[cfg(test)]` items are left out: tests may reach anywhere.
//! One kind of edge does not count towards a cycle: a folder's `mod.rs` (or `x.rs` beside
//! `x/`) using the files it declares, as `cmd/mod.rs` dispatches to each subcommand's file,
//! which may take the folder's shared types from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

/// A module's path from the crate root: `["exec", "session"]`; `[]` is lib.rs.
type Module = Vec<String>;

/// Crates, and weft modules, that only the listed files and folders may use: the rules written
/// under src/README.md's table.
const ONLY_USED_BY: &[(&str, &[&str])] = &[
    ("rhai", &["script/"]),
    ("clap", &["cli.rs", "cmd/"]),
    ("clap_complete", &["cli.rs", "cmd/"]),
    ("cli", &["lib.rs", "cmd/"]),
    ("cmd", &["lib.rs"]),
    ("lsp", &["cmd/"]),
];

/// A `use` item, `pub` or not: its visibility and its tree.
static USES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^[ \t]*(pub(?:\([^)]*\))?\s+)?use\s+([^;]*);").expect("re"));

/// A path of two or more segments, `crate::exec::stage::run_step`, not inside a longer one.
static PATHS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[^A-Za-z0-9_:$])((?:\$crate|[A-Za-z_][A-Za-z0-9_]*)(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)",
    )
    .expect("re")
});

/// One file of the crate.
struct Source {
    /// Relative to src/, `exec/session.rs`.
    path: String,
    /// Its text with comments, literals and `#[cfg(test)]` items blanked, lines kept.
    code: String,
}

/// Where a file refers to a path of the crate.
struct Reference {
    /// The path from the crate root, item included: `["exec", "session", "HostError"]`.
    path: Module,
    line: usize,
    /// A `pub use`: the file offers the item as its own.
    reexport: bool,
}

struct Crate {
    files: BTreeMap<Module, Source>,
    references: BTreeMap<Module, Vec<Reference>>,
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

impl Crate {
    fn read() -> Crate {
        let root = src();
        let mut files = BTreeMap::new();
        for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let entry = entry.expect("walk src/");
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(&root)
                .expect("under src/")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(path).expect("read a source file");
            files.insert(
                module_of(&rel),
                Source {
                    path: rel,
                    code: without_tests(&blank_comments_and_literals(&text)),
                },
            );
        }
        let mut krate = Crate {
            files,
            references: BTreeMap::new(),
        };
        let references = krate
            .files
            .iter()
            .map(|(module, source)| (module.clone(), krate.references_of(module, &source.code)))
            .collect();
        krate.references = references;
        krate
    }

    fn path(&self, module: &Module) -> &str {
        &self.files[module].path
    }

    /// Whether `name` is a module declared in `module`'s file with a file of its own.
    fn is_child(&self, module: &Module, name: &str) -> bool {
        let mut child = module.clone();
        child.push(name.to_string());
        self.files.contains_key(&child)
    }

    /// `path` as written in `module`, made absolute; `None` when it leaves the crate.
    fn absolute(&self, module: &Module, path: &[String]) -> Option<Module> {
        let (first, rest) = path.split_first()?;
        let mut at = module.clone();
        match first.as_str() {
            "crate" | "$crate" => return Some(rest.to_vec()),
            // main.rs names the library by its crate name.
            "weft" if module.first().is_some_and(|m| m == "main") => return Some(rest.to_vec()),
            "self" => {}
            "super" => {
                at.pop();
                let mut rest = rest;
                while let Some(("super", tail)) = rest.split_first().map(|(h, t)| (h.as_str(), t)) {
                    at.pop();
                    rest = tail;
                }
                at.extend(rest.iter().cloned());
                return Some(at);
            }
            name if self.is_child(module, name) => at.push(name.to_string()),
            _ => return None,
        }
        at.extend(rest.iter().cloned());
        Some(at)
    }

    fn references_of(&self, module: &Module, code: &str) -> Vec<Reference> {
        let mut found = Vec::new();
        for m in USES.captures_iter(code) {
            let whole = m.get(0).expect("match");
            let line = line_of(code, whole.start());
            let mut paths = Vec::new();
            use_tree(&m[2], &[], &mut paths);
            for path in paths {
                if let Some(path) = self.absolute(module, &path) {
                    found.push(Reference {
                        path,
                        line,
                        reexport: m.get(1).is_some(),
                    });
                }
            }
        }
        // Paths in code: `crate::exec::stage::run_step(..)`, `ops::files::write(..)`.
        let rest = USES.replace_all(code, |m: &regex::Captures| {
            "\n".repeat(m[0].matches('\n').count())
        });
        for m in PATHS.captures_iter(&rest) {
            let text = m.get(1).expect("path");
            let path: Vec<String> = text
                .as_str()
                .split("::")
                .map(|s| s.trim().to_string())
                .collect();
            if let Some(path) = self.absolute(module, &path) {
                found.push(Reference {
                    path,
                    line: line_of(&rest, text.start()),
                    reexport: false,
                });
            }
        }
        found
    }

    /// The file that defines `path`'s item: the deepest module on the path that has a file,
    /// followed through that file's `pub use` of the item.
    fn resolve(&self, path: &[String], depth: usize) -> Module {
        let split = (0..=path.len())
            .rev()
            .find(|&k| self.files.contains_key(&path[..k]))
            .unwrap_or(0);
        let (module, rest) = path.split_at(split);
        let module = module.to_vec();
        if let (Some(item), true) = (rest.first(), depth < 8) {
            let offered = self.references[&module]
                .iter()
                .find(|r| r.reexport && r.path.last() == Some(item) && r.path != path);
            if let Some(offered) = offered {
                let mut target = offered.path.clone();
                target.extend(rest[1..].iter().cloned());
                return self.resolve(&target, depth + 1);
            }
        }
        module
    }

    /// Who imports whom, with the line of the first reference; re-exports are not imports.
    fn imports(&self) -> BTreeMap<Module, BTreeMap<Module, usize>> {
        let mut edges: BTreeMap<Module, BTreeMap<Module, usize>> = BTreeMap::new();
        for (module, references) in &self.references {
            let entry = edges.entry(module.clone()).or_default();
            for reference in references.iter().filter(|r| !r.reexport) {
                let target = self.resolve(&reference.path, 0);
                if &target != module {
                    entry.entry(target).or_insert(reference.line);
                }
            }
        }
        edges
    }
}

fn module_of(rel: &str) -> Module {
    let mut module: Module = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if module.last().is_some_and(|m| m == "mod" || m == "lib") {
        module.pop();
    }
    module
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// The paths a `use` tree names: `a::{b, c::{self, d}}` is `a::b`, `a::c`, `a::c::d`.
fn use_tree(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let (head, group) = match tree.find('{') {
        Some(open) => (
            &tree[..open],
            Some(&tree[open + 1..tree.rfind('}').unwrap_or(tree.len())]),
        ),
        None => (tree, None),
    };
    let head = head.split(" as ").next().unwrap_or(head);
    let mut path = prefix.to_vec();
    path.extend(
        head.split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "*" && *s != "self")
            .map(str::to_string),
    );
    let Some(group) = group else {
        out.push(path);
        return;
    };
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                use_tree(&group[start..i], &path, out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !group[start..].trim().is_empty() {
        use_tree(&group[start..], &path, out);
    }
}

/// `text` with comments, string and char literals replaced by spaces, newlines kept.
fn blank_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(i + k) == Some(&c))
    };
    let ident = |i: usize| i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let blank = |from: usize, to: usize, out: &mut String| {
        for c in &chars[from..to.min(chars.len())] {
            out.push(if *c == '\n' { '\n' } else { ' ' });
        }
    };
    while i < chars.len() {
        let start = i;
        if at(i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < chars.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if !ident(i) && (at(i, "r\"") || at(i, "r#") || at(i, "br\"") || at(i, "br#")) {
            // A raw string: r"…", r#"…"#, with as many # to close as to open.
            i += if chars[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while chars.get(i) == Some(&'#') {
                hashes += 1;
                i += 1;
            }
            if chars.get(i) != Some(&'"') {
                // `r#ident`, a raw identifier.
                out.extend(&chars[start..i]);
                continue;
            }
            i += 1;
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !at(i, &close) {
                i += 1;
            }
            i += close.chars().count();
        } else if chars[i] == '"' || (!ident(i) && at(i, "b\"")) {
            i += if chars[i] == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if chars[i] == '\'' && chars.get(i + 1) == Some(&'\\') {
            // '\n', '\'', '\u{..}'
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if chars[i] == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        blank(start, i, &mut out);
    }
    out
}

/// `code` with each `#[cfg(test)]` item blanked, newlines kept.
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let semi = item.find(';');
        let open = item.find('{');
        let end = match (semi, open) {
            (Some(semi), Some(open)) if semi < open => semi + 1,
            (Some(semi), None) => semi + 1,
            (_, Some(open)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => item.len(),
        };
        out.extend(
            item[..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The rows of src/README.md's table: what a file or folder (`cmd/`, `heap.rs`) must not import.
struct Rule {
    /// `cmd/` or `heap.rs`, as the map writes them.
    names: Vec<String>,
    /// Weft's top-level modules and outside crates it must not import.
    forbidden: Vec<String>,
    /// "any weft module": none but the crate root's `run`.
    no_weft_module: bool,
}

fn map_rules() -> Vec<Rule> {
    let map = std::fs::read_to_string(src().join("README.md")).expect("src/README.md");
    let ticked = Regex::new(r"`([^`]+)`").expect("re");
    let names = |cell: &str| -> Vec<String> {
        ticked
            .captures_iter(cell)
            .map(|c| c[1].to_string())
            .collect()
    };
    map.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').collect();
            assert_eq!(
                cells.len(),
                5,
                "a row of the map with a `|` in a cell: {line}"
            );
            Rule {
                names: names(cells[1]),
                forbidden: names(cells[3]),
                no_weft_module: cells[3].contains("any weft module"),
            }
        })
        .collect()
}

/// Whether the map's name (`exec/`, `heap.rs`, `lib.rs`) covers `module`'s file.
fn covers(name: &str, module: &Module) -> bool {
    match (name.strip_suffix('/'), name.strip_suffix(".rs")) {
        (Some(folder), _) => module.first().is_some_and(|m| m == folder),
        (_, Some("lib")) => module.is_empty(),
        (_, Some(file)) => module.len() == 1 && module[0] == file,
        _ => false,
    }
}

/// What a use of the crate `name` looks like in code: `rhai::…`.
fn crate_use(name: &str) -> Regex {
    Regex::new(&format!(r"(?:^|[^A-Za-z0-9_:$]){name}\s*::")).expect("re")
}

/// The line of `code`'s first match of `pattern`.
fn first_line(pattern: &Regex, code: &str) -> Option<usize> {
    pattern.find(code).map(|m| line_of(code, m.start() + 1))
}

#[test]
fn the_map_names_every_top_level_module() {
    let krate = Crate::read();
    let rules = map_rules();
    let missing: Vec<&str> = krate
        .files
        .keys()
        .filter(|m| m.len() <= 1)
        .filter(|m| !rules.iter().any(|r| r.names.iter().any(|n| covers(n, m))))
        .map(|m| krate.path(m))
        .collect();
    assert!(
        missing.is_empty(),
        "src/README.md's table has no row for {missing:?}"
    );
}

#[test]
fn no_file_imports_what_the_map_forbids() {
    let krate = Crate::read();
    let imports = krate.imports();
    let top_level: BTreeSet<&str> = krate
        .files
        .keys()
        .filter_map(|m| m.first().map(String::as_str))
        .collect();
    let rules = map_rules();
    // The outside crates named: in the map's column, and in ONLY_USED_BY.
    let crates: BTreeMap<&str, Regex> = rules
        .iter()
        .flat_map(|r| r.forbidden.iter().map(String::as_str))
        .chain(ONLY_USED_BY.iter().map(|(name, _)| *name))
        .filter(|name| !top_level.contains(name))
        .map(|name| (name, crate_use(name)))
        .collect();
    let mut wrong = Vec::new();
    for (module, source) in &krate.files {
        let mut refuse = |what: &str, line: usize, why: String| {
            wrong.push(format!("{}:{line} uses {what}: {why}", source.path));
        };
        for rule in &rules {
            let Some(name) = rule.names.iter().find(|n| covers(n, module)) else {
                continue;
            };
            for (target, line) in &imports[module] {
                let top = target.first().map(String::as_str);
                let forbidden = match top {
                    // The crate root holds only `run`, which main.rs calls.
                    None => false,
                    Some(top) if rule.no_weft_module => {
                        module.first().map(String::as_str) != Some(top)
                    }
                    Some(top) => rule.forbidden.iter().any(|f| f == top),
                };
                if forbidden {
                    refuse(
                        krate.path(target),
                        *line,
                        format!("the map says `{name}` must not import it"),
                    );
                }
            }
            for outside in rule
                .forbidden
                .iter()
                .filter(|f| !top_level.contains(f.as_str()))
            {
                if let Some(line) = first_line(&crates[outside.as_str()], &source.code) {
                    refuse(
                        outside,
                        line,
                        format!("the map says `{name}` must not use it"),
                    );
                }
            }
        }
        for (name, users) in ONLY_USED_BY {
            let own = module.first().is_some_and(|m| m == name);
            if own || users.iter().any(|u| covers(u, module)) {
                continue;
            }
            let line = if top_level.contains(name) {
                imports[module]
                    .iter()
                    .find(|(target, _)| target.first().is_some_and(|t| t == name))
                    .map(|(_, line)| *line)
            } else {
                first_line(&crates[name], &source.code)
            };
            if let Some(line) = line {
                refuse(name, line, format!("only {users:?} may"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports the map forbids:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other_even_through_others() {
    let krate = Crate::read();
    let mut imports = krate.imports();
    // A folder's front door may use the files it declares.
    for (module, targets) in imports.iter_mut() {
        targets
            .retain(|target, _| !(target.len() == module.len() + 1 && target.starts_with(module)));
    }
    let mut report = Vec::new();
    for cycle in strongly_connected(&imports) {
        let mut files: Vec<&str> = cycle.iter().map(|m| krate.path(m)).collect();
        files.sort();
        report.push(format!("a cycle between {files:?}:"));
        for from in &cycle {
            for (to, line) in &imports[from] {
                if cycle.contains(to) {
                    report.push(format!(
                        "  {}:{line} imports {}",
                        krate.path(from),
                        krate.path(to)
                    ));
                }
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// The groups of two or more modules that reach each other (Tarjan's algorithm).
fn strongly_connected(edges: &BTreeMap<Module, BTreeMap<Module, usize>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeMap<Module, usize>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        groups: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flat_map(|t| t.keys()) {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.clone());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                s.groups.push(group);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.groups
}

mod reading {
    use super::*;

    #[test]
    fn use_trees_expand_to_paths() {
        let mut out = Vec::new();
        use_tree(
            "crate::exec::{remote_sums::{self, STAT_FORMAT}, session::HostError as E}",
            &[],
            &mut out,
        );
        let out: Vec<String> = out.iter().map(|p| p.join("::")).collect();
        assert_eq!(
            out,
            [
                "crate::exec::remote_sums",
                "crate::exec::remote_sums::STAT_FORMAT",
                "crate::exec::session::HostError"
            ]
        );
    }

    #[test]
    fn comments_literals_and_tests_are_not_code() {
        let text = "let a = \"crate::x::y\"; // crate::z\nlet b = r#\"crate::w\"#; let c = '\"';\n/* crate::v */ crate::real::f(x)\n#[cfg(test)]\nmod tests { use crate::t; }\nlet d: &'static str = b\"q\";";
        let code = without_tests(&blank_comments_and_literals(text));
        assert_eq!(code.lines().count(), text.lines().count());
        assert!(code.contains("crate::real::f"), "{code}");
        for gone in ["crate::x", "crate::z", "crate::w", "crate::v", "crate::t"] {
            assert!(!code.contains(gone), "{gone} in {code}");
        }
        assert!(code.contains("&'static str"), "{code}");
    }
}
