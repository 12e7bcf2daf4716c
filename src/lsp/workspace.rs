//! What the server knows of the project: its config, layers, goals, templates and vars,
//! loaded from disk once and again after a save.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::inventory::{self, Inventory, Vars};
use crate::layers::{Kind, Layer, LayerFile, Layers, TEMPLATES};
use crate::project::Project;
use crate::script::{check, Goal, ScriptEngine};

/// The loaded project; any part that fails to load is simply absent.
pub struct Workspace {
    layers: Option<Layers>,
    engine: Option<ScriptEngine>,
    vars: Vec<(String, Vec<String>)>,
    env_vars: Option<EnvVars>,
    has_project: bool,
}

/// The vars of one env's hosts, merged as a run merges them (project, env, roles, host).
pub struct EnvVars {
    /// The env's name.
    pub env: String,
    /// Each host with its vars; for an env whose machines a provider makes, each machine
    /// role (`app machines`), as the machines would get them.
    pub hosts: Vec<(String, Vars)>,
}

impl Workspace {
    /// Loads the project that `root` lies in; `env` is the env whose vars `host.vars.`
    /// completes (the default env when `None`, as `weft run` without `-e`).
    pub fn load(root: &Path, env: Option<&str>) -> Self {
        let Ok(mut project) = Project::discover(root) else {
            return Workspace {
                layers: None,
                engine: None,
                vars: Vec::new(),
                env_vars: None,
                has_project: false,
            };
        };
        // A broken plugin is left out here; `weft list` and `weft run` report what is wrong.
        let plugins = crate::plugin::load(&mut project).unwrap_or_default();
        let layers =
            Layers::new(&project).with_plugins(plugins.into_iter().map(|p| (p.layer, p.root)));
        let engine = ScriptEngine::load(&layers, None).ok();
        Workspace {
            vars: var_names(&project),
            env_vars: env_vars(&project, env),
            has_project: project.config.is_some(),
            layers: Some(layers),
            engine,
        }
    }

    /// The merged vars of the current env's hosts; none when the env does not resolve.
    pub fn env_vars(&self) -> Option<&EnvVars> {
        self.env_vars.as_ref()
    }

    /// The project's scripts folder (`deploy/`); none outside a project.
    pub fn scripts_dir(&self) -> Option<PathBuf> {
        let layers = self.layers.as_ref().filter(|_| self.has_project)?;
        Some(layers.project_path(Kind::Script, ""))
    }

    /// Every goal of every layer as saved on disk, sorted by name.
    pub fn goals(&self) -> Vec<&Goal> {
        self.engine
            .as_ref()
            .map(|e| e.scripts().goals().collect())
            .unwrap_or_default()
    }

    /// Template names as `host.template` takes them, with the layer that wins each.
    pub fn templates(&self) -> Vec<(String, Layer)> {
        let Some(layers) = &self.layers else {
            return Vec::new();
        };
        layers
            .resolve_all(Kind::Template)
            .into_iter()
            .map(|r| {
                let name = r
                    .winner
                    .logical
                    .strip_prefix(&format!("{TEMPLATES}/"))
                    .unwrap_or(&r.winner.logical)
                    .to_string();
                (name, r.winner.layer)
            })
            .collect()
    }

    /// Every var set in `weft.toml` (top level, envs, hosts and roles), with the tables that
    /// set it.
    pub fn vars(&self) -> &[(String, Vec<String>)] {
        &self.vars
    }

    /// The names `import` takes: every script's logical path without `.rhai`, with its layer.
    pub fn imports(&self) -> Vec<(String, Layer)> {
        let Some(layers) = &self.layers else {
            return Vec::new();
        };
        layers
            .resolve_all(Kind::Script)
            .into_iter()
            .map(|r| {
                let name = r.winner.logical.trim_end_matches(".rhai").to_string();
                (name, r.winner.layer)
            })
            .collect()
    }

    /// Where ejecting the stdlib file at `logical` puts it, and its text; none without a
    /// project or when the project already has that file.
    pub fn eject(&self, logical: &str) -> Option<(PathBuf, String)> {
        let layers = self.layers.as_ref().filter(|_| self.has_project)?;
        let file = Layers::stdlib_file(logical)?;
        let target = layers.project_path(Layers::kind_of(logical), logical);
        if target.exists() {
            return None;
        }
        Some((target, file.read().ok()?.text().to_string()))
    }

    /// Template `name`'s winning file and the files it hides, with their layers.
    pub fn template_layers(&self, name: &str) -> Option<Vec<(String, Layer)>> {
        let logical = format!("{TEMPLATES}/{name}");
        let resolved = self
            .layers
            .as_ref()?
            .resolve_all(Kind::Template)
            .into_iter()
            .find(|r| r.winner.logical == logical)?;
        Some(
            std::iter::once(&resolved.winner)
                .chain(&resolved.hidden)
                .map(|f| (f.display_name(), f.layer))
                .collect(),
        )
    }

    /// The file and 1-based line that define goal `name`; files without a path on disk
    /// (stdlib, generated app goals) are written read-only under `cache` first.
    pub fn goal_location(&self, name: &str, cache: &Path) -> Option<(PathBuf, usize)> {
        let engine = self.engine.as_ref()?;
        let goal = engine.scripts().goal(name).ok()?;
        let script = engine.scripts().script_of(goal);
        let line = check::fn_line(script.source.text(), name).unwrap_or(1);
        Some((on_disk(&script.file, script.source.text(), cache)?, line))
    }

    /// The file an `import` path names (`lib/app`, `nginx`).
    pub fn import_location(&self, path: &str, cache: &Path) -> Option<PathBuf> {
        let script = self.engine.as_ref()?.scripts().import(path)?;
        on_disk(&script.file, script.source.text(), cache)
    }

    /// The file that wins template `name` (as `host.template` takes it).
    pub fn template_location(&self, name: &str, cache: &Path) -> Option<PathBuf> {
        let file = self
            .layers
            .as_ref()?
            .find(Kind::Template, &format!("{TEMPLATES}/{name}"))?;
        let source = file.read().ok()?;
        on_disk(&file, source.text(), cache)
    }
}

/// `file`'s path, or for a file without one (stdlib, generated app goals) a read-only copy of
/// `text` under `cache`.
fn on_disk(file: &LayerFile, text: &str, cache: &Path) -> Option<PathBuf> {
    if let Some(path) = file.disk_path() {
        return Some(path.to_path_buf());
    }
    let folder = if file.display_name().starts_with("<generated>") {
        "generated"
    } else {
        "stdlib"
    };
    if !crate::lockfile::private_folder(cache) {
        return None;
    }
    let path = cache.join(folder).join(&file.logical);
    write_read_only(&path, text).ok()?;
    Some(path)
}

/// Writes `text` at `path` unless it already holds it, and leaves it read-only.
fn write_read_only(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // An older copy is read-only: replace it rather than write through it; the new one is
    // made exclusively and never through a link, read-only from the start.
    let _ = std::fs::remove_file(path);
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// Where read-only copies of embedded files go: `$XDG_CACHE_HOME/weft`, else `~/.cache/weft`.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    match base {
        Some(base) => base.join("weft"),
        // Without a home, a folder named for this user in the shared temporary folder, which
        // is used only while it is this user's alone (`private_folder`).
        None => {
            use std::os::unix::fs::MetadataExt;
            let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
            std::env::temp_dir().join(format!("weft-cache-{uid}"))
        }
    }
}

/// The env's hosts with their merged vars, without asking a provider for its machines (the
/// server never touches the cloud): a provider env lists each machine role instead.
fn env_vars(project: &Project, env: Option<&str>) -> Option<EnvVars> {
    let name = Inventory::env_name(project, env);
    let resolved = Inventory::resolve(project, &name).ok()?;
    let mut hosts: Vec<(String, Vars)> = resolved
        .hosts
        .into_iter()
        .map(|h| (h.name, h.vars))
        .collect();
    let section = project.config.as_ref().and_then(|c| c.file.env.get(&name));
    if let Some(section) = section.filter(|s| s.provider.is_some()) {
        for (role, machine) in &section.machines {
            let mut vars = resolved.vars.clone();
            inventory::merge(&mut vars, inventory::to_vars(&machine.vars));
            hosts.push((format!("{role} machines"), vars));
        }
    }
    if hosts.is_empty() {
        hosts.push((name.clone(), resolved.vars));
    }
    Some(EnvVars { env: name, hosts })
}

fn var_names(project: &Project) -> Vec<(String, Vec<String>)> {
    let Some(config) = &project.config else {
        return Vec::new();
    };
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |vars: &toml::Table, table: String| {
        for key in vars.keys() {
            names.entry(key.clone()).or_default().push(table.clone());
        }
    };
    add(&config.file.vars, "[vars]".into());
    for (env_name, env) in &config.file.env {
        add(&env.vars, format!("[env.{env_name}.vars]"));
        for (host, entry) in &env.hosts {
            if let Some(vars) = entry.get_ref().vars() {
                add(vars, format!("[env.{env_name}] host `{host}`"));
            }
        }
        for (role, entry) in &env.roles {
            if let Some(vars) = entry.get_ref().vars() {
                add(vars, format!("[env.{env_name}] role `{role}`"));
            }
        }
    }
    if !config.file.apps.is_empty() {
        names
            .entry("apps".into())
            .or_default()
            .push("[apps.*]".into());
    }
    names.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The read-only copies go only into a folder of this user's that nobody else can write:
    /// not one another user made first, nor a link planted under its name. Needs root to give
    /// a folder away.
    #[test]
    fn stdlib_copies_go_only_into_a_private_folder() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("dir");
        let mine = dir.path().join("mine");
        assert!(crate::lockfile::private_folder(&mine));
        let path = mine.join("stdlib/x.rhai");
        write_read_only(&path, "fn x() {}\n").expect("write");
        write_read_only(&path, "fn y() {}\n").expect("replace the read-only copy");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "fn y() {}\n");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&mine, &link).expect("link");
        assert!(!crate::lockfile::private_folder(&link));
        if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0) {
            let theirs = dir.path().join("theirs");
            std::fs::create_dir(&theirs).expect("dir");
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
            assert!(!crate::lockfile::private_folder(&theirs));
        }
    }
}
