//! Every winning script compiled once, and the goals they define.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use rhai::{Engine, FnAccess, ParseError, AST};

use super::diagnostic::{self, ScriptError};
use crate::index::{self, FnOutline, Index};
use crate::layers::{Kind, Layer, LayerFile, Layers, Resolved};
use crate::source::SourceFile;

/// One script, compiled when a command first needs it.
pub struct Script {
    /// The file that won its logical path.
    pub file: LayerFile,
    /// Its text, for diagnostics.
    pub source: SourceFile,
    /// The functions it defines, from its outline: a goal is found without compiling.
    pub functions: Vec<FnOutline>,
    /// The SHA-256 of its text, or its stdlib path.
    key: String,
    ast: OnceLock<Result<Arc<AST>, ParseError>>,
}

impl Script {
    /// What names its text in the index: its SHA-256, or `<stdlib>/PATH` for an embedded file.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A public script function, runnable by name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Goal {
    /// Its name, `<service>_<op>` by convention.
    pub name: String,
    /// The parameters given on the command line (after `host`).
    pub params: Vec<String>,
    /// Whether it runs once per host (its first parameter is `host`).
    pub takes_host: bool,
    /// Its `///` doc comment, without the slashes.
    pub doc: String,
    /// The layer it comes from.
    pub layer: Layer,
    /// The file that defines it.
    pub file: String,
    /// Definitions in less specific layers that this one hides.
    pub overrides: Vec<String>,
    #[serde(skip)]
    script: usize,
}

impl Goal {
    fn of(f: &FnOutline, layer: Layer, file: String, script: usize) -> Goal {
        let takes_host = f.params.first().map(String::as_str) == Some("host");
        Goal {
            name: f.name.clone(),
            params: f
                .params
                .iter()
                .skip(usize::from(takes_host))
                .cloned()
                .collect(),
            takes_host,
            doc: f.doc.clone(),
            layer,
            file,
            overrides: Vec::new(),
            script,
        }
    }

    /// The goal that public function `f` of an unsaved project script (an editor's open
    /// buffer of `file`) defines; it belongs to no loaded script, so it is never run.
    pub fn unsaved(f: &FnOutline, file: String) -> Option<Goal> {
        (!f.private).then(|| Goal::of(f, Layer::Project, file, usize::MAX))
    }

    /// The first line of its doc comment.
    pub fn summary(&self) -> &str {
        self.doc.lines().next().unwrap_or_default()
    }

    /// `<a> <b>` as shown in usage lines.
    pub fn usage(&self) -> String {
        self.params.iter().map(|p| format!(" <{p}>")).collect()
    }
}

/// All scripts of a project's layers, each compiled on first use.
pub struct ScriptSet {
    compiler: Engine,
    scripts: Vec<Script>,
    by_logical: HashMap<String, usize>,
    goals: BTreeMap<String, Goal>,
    sources: HashMap<String, SourceFile>,
}

pub(crate) fn doc_text(comments: &[&str]) -> String {
    comments
        .iter()
        .flat_map(|c| c.lines())
        .map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("///")
                .or_else(|| l.strip_prefix("/**"))
                .unwrap_or(l);
            let l = l.strip_suffix("*/").unwrap_or(l);
            l.strip_prefix(' ').unwrap_or(l).trim_end()
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

impl ScriptSet {
    /// Outlines every winning script of `layers`, from `index` where it keeps the script's
    /// text, else by compiling it; any syntax error or duplicate goal stops here, as a kept
    /// outline is only ever of a text that compiled.
    pub fn load(layers: &Layers, compiler: Engine, index: &mut Index) -> Result<Self, ScriptError> {
        let mut scripts = Vec::new();
        let mut hidden_by_index = Vec::new();
        for resolved in layers.resolve_all(Kind::Template) {
            plugin_conflict(&resolved, "template")?;
        }
        for resolved in layers.resolve_all(Kind::Script) {
            plugin_conflict(&resolved, "file")?;
            let file = resolved.winner;
            let source = file.read().map_err(|e| ScriptError::Read {
                file: file.display_name(),
                message: e.to_string(),
            })?;
            // The stdlib is part of the binary, which the whole index is kept for: its path
            // names its text, and hashing it would be most of the work of a kept index.
            let key = if file.is_embedded() {
                format!("<stdlib>/{}", file.logical)
            } else {
                index::key(source.text())
            };
            let ast = OnceLock::new();
            let functions = match index.outline(&key) {
                Some(functions) => functions,
                None => {
                    let compiled =
                        compile(&compiler, &source).map_err(|e| diagnostic::syntax(&source, &e))?;
                    let functions = outline(&compiled);
                    index.remember(key.clone(), functions.clone());
                    let _ = ast.set(Ok(Arc::new(compiled)));
                    functions
                }
            };
            hidden_by_index.push(resolved.hidden);
            scripts.push(Script {
                file,
                source,
                functions,
                key,
                ast,
            });
        }
        let mut goals: BTreeMap<String, Goal> = BTreeMap::new();
        for (index, script) in scripts.iter().enumerate() {
            // `lib/` holds helpers that other scripts import: its functions are not goals.
            if script.file.logical.starts_with("lib/") {
                continue;
            }
            for f in script.functions.iter().filter(|f| !f.private) {
                let goal = Goal::of(f, script.file.layer, script.file.display_name(), index);
                match goals.get_mut(&goal.name) {
                    None => {
                        goals.insert(goal.name.clone(), goal);
                    }
                    Some(existing) if existing.script == index => {}
                    Some(existing) if two_plugins(existing.layer, goal.layer) => {
                        return Err(ScriptError::PluginConflict {
                            what: format!("goal `{}`", goal.name),
                            first: format!("{} ({})", existing.file, existing.layer),
                            second: format!("{} ({})", goal.file, goal.layer),
                        });
                    }
                    Some(existing) if existing.layer == goal.layer => {
                        return Err(ScriptError::DuplicateGoal {
                            goal: goal.name,
                            first: existing.file.clone(),
                            second: goal.file,
                        });
                    }
                    Some(existing) if goal.layer < existing.layer => {
                        let mut goal = goal;
                        goal.overrides
                            .push(format!("{} ({})", existing.file, existing.layer));
                        goal.overrides.append(&mut existing.overrides);
                        *existing = goal;
                    }
                    Some(existing) => existing
                        .overrides
                        .push(format!("{} ({})", goal.file, goal.layer)),
                }
            }
        }
        // A whole file replaced by a more specific layer hides its goals too.
        for (index, hidden) in hidden_by_index.iter().enumerate() {
            for goal in goals.values_mut().filter(|g| g.script == index) {
                goal.overrides.extend(
                    hidden
                        .iter()
                        .map(|h| format!("{} ({})", h.display_name(), h.layer)),
                );
            }
        }
        let by_logical = scripts
            .iter()
            .enumerate()
            .map(|(i, s)| (s.file.logical.clone(), i))
            .collect();
        let sources = scripts
            .iter()
            .map(|s| (s.source.name().to_string(), s.source.clone()))
            .collect();
        Ok(ScriptSet {
            compiler,
            scripts,
            by_logical,
            goals,
            sources,
        })
    }

    /// Every goal, sorted by name.
    pub fn goals(&self) -> impl Iterator<Item = &Goal> {
        self.goals.values()
    }

    /// The goal called `name`, or an error naming the closest ones.
    pub fn goal(&self, name: &str) -> Result<&Goal, ScriptError> {
        self.goals.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.goals.keys().map(String::as_str).collect();
            ScriptError::UnknownGoal {
                name: name.to_string(),
                help: crate::suggest::help("goals", name, &known),
            }
        })
    }

    /// The script that defines `goal`.
    /// `goal` must come from this set (not [`Goal::unsaved`]).
    pub fn script_of(&self, goal: &Goal) -> &Script {
        &self.scripts[goal.script]
    }

    /// The script an `import` path names: `x` is `x.rhai`, else `services/`, `roles/`, `env/`
    /// or `lib/x.rhai`.
    pub fn import(&self, path: &str) -> Option<&Script> {
        let path = path.trim_end_matches(".rhai");
        ["", "services/", "roles/", "env/", "lib/"]
            .iter()
            .find_map(|dir| self.by_logical.get(&format!("{dir}{path}.rhai")))
            .map(|&i| &self.scripts[i])
    }

    /// `script` compiled: now, if no command needed it before.
    pub fn ast(&self, script: &Script) -> Result<Arc<AST>, ScriptError> {
        self.compiled(script)
            .map_err(|e| diagnostic::syntax(&script.source, &e))
    }

    /// `script` compiled, or Rhai's error for a module resolver to report.
    pub(crate) fn compiled(&self, script: &Script) -> Result<Arc<AST>, ParseError> {
        // One thread compiles; hosts that import the same module meanwhile wait for it.
        script
            .ast
            .get_or_init(|| compile(&self.compiler, &script.source).map(Arc::new))
            .clone()
    }

    /// Every script, in layer order.
    pub fn all(&self) -> impl Iterator<Item = &Script> {
        self.scripts.iter()
    }

    /// Every script's source, by the name diagnostics use.
    pub fn sources(&self) -> &HashMap<String, SourceFile> {
        &self.sources
    }
}

/// `source` compiled, named for diagnostics.
fn compile(compiler: &Engine, source: &SourceFile) -> Result<AST, ParseError> {
    let mut ast = compiler.compile(source.text())?;
    ast.set_source(source.name());
    Ok(ast)
}

/// The functions `ast` defines, with their docs; closures (hidden `anon$...` functions) are
/// left out.
fn outline(ast: &AST) -> Vec<FnOutline> {
    ast.iter_functions()
        .filter(|f| !f.name.starts_with("anon$"))
        .map(|f| FnOutline {
            name: f.name.to_string(),
            params: f.params.iter().map(|p| p.to_string()).collect(),
            doc: doc_text(&f.comments),
            private: f.access == FnAccess::Private,
        })
        .collect()
}

/// Whether `a` and `b` are two different plugins.
/// Two plugins must not decide by their order which one's file wins: a script or template
/// that two plugins ship, and no nearer layer replaces, is an error naming both.
fn plugin_conflict(resolved: &Resolved, what: &str) -> Result<(), ScriptError> {
    let file = &resolved.winner;
    match resolved
        .hidden
        .iter()
        .find(|h| two_plugins(file.layer, h.layer))
    {
        Some(other) => Err(ScriptError::PluginConflict {
            what: format!("{what} `{}`", file.logical),
            first: format!("{} ({})", file.display_name(), file.layer),
            second: format!("{} ({})", other.display_name(), other.layer),
        }),
        None => Ok(()),
    }
}

fn two_plugins(a: Layer, b: Layer) -> bool {
    matches!((a, b), (Layer::Plugin(x, _), Layer::Plugin(y, _)) if x != y)
}

#[cfg(test)]
mod tests {
    use super::doc_text;

    #[test]
    fn doc_comments_lose_their_slashes() {
        assert_eq!(
            doc_text(&["/// Deploys it.\n///\n/// Then more."]),
            "Deploys it.\n\nThen more."
        );
    }
}
