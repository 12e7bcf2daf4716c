//! The layered file tree: project → user folder → stdlib embedded in the binary.
//!
//! Scripts and templates are named by a logical path (`services/nginx.rhai`,
//! `templates/nginx/site.conf.hbs`); the most specific layer holding a path wins it whole.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use walkdir::WalkDir;

use crate::project::Project;
use crate::source::SourceFile;

/// The stdlib compiled into the binary.
static STDLIB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/stdlib");

/// The logical folder that holds templates.
pub const TEMPLATES: &str = "templates";

/// Where a file comes from, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// The project's `deploy/` and `templates/`.
    Project,
    /// A plugin: its place in `[plugins]` of weft.toml (earlier wins) and its name.
    Plugin(u16, &'static str),
    /// The user's personal folders.
    User,
    /// Built into the binary.
    Stdlib,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Project => "project",
            Layer::Plugin(_, name) => return write!(f, "plugin:{name}"),
            Layer::User => "user",
            Layer::Stdlib => "stdlib",
        })
    }
}

impl serde::Serialize for Layer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One file of one layer.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// The layer it belongs to.
    pub layer: Layer,
    /// Its logical path, the same in every layer.
    pub logical: String,
    origin: Origin,
}

#[derive(Debug, Clone)]
enum Origin {
    Disk { path: PathBuf, shown: String },
    Embedded(&'static str),
    Generated(String),
}

impl LayerFile {
    /// The name diagnostics show: a project-relative path, a user path or `<stdlib>/...`.
    pub fn display_name(&self) -> String {
        match &self.origin {
            Origin::Disk { shown, .. } => shown.clone(),
            Origin::Embedded(_) => format!("<stdlib>/{}", self.logical),
            Origin::Generated(_) => format!("<generated>/{}", self.logical),
        }
    }

    /// The path on disk, for files that are not embedded.
    pub fn disk_path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::Disk { path, .. } => Some(path),
            Origin::Embedded(_) | Origin::Generated(_) => None,
        }
    }

    /// Whether it is embedded in the binary (a stdlib file, not a generated one).
    pub fn is_embedded(&self) -> bool {
        matches!(self.origin, Origin::Embedded(_))
    }

    /// Reads the file's text.
    pub fn read(&self) -> std::io::Result<SourceFile> {
        let text = match &self.origin {
            Origin::Disk { path, .. } => std::fs::read_to_string(path)?,
            Origin::Embedded(text) => (*text).to_string(),
            Origin::Generated(text) => text.clone(),
        };
        Ok(SourceFile::new(self.display_name(), text))
    }
}

/// A logical path with the file that wins it and the ones it hides.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The most specific file.
    pub winner: LayerFile,
    /// Less specific files of the same path, most specific first.
    pub hidden: Vec<LayerFile>,
}

/// Which files a lookup covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `*.rhai` outside `templates/` and `skeletons/`.
    Script,
    /// Everything under `templates/`.
    Template,
}

/// The layered view of one project's scripts and templates.
#[derive(Debug, Clone)]
pub struct Layers {
    root: PathBuf,
    project_scripts: Option<PathBuf>,
    project_templates: Option<PathBuf>,
    user_scripts: Option<PathBuf>,
    user_templates: Option<PathBuf>,
    plugins: Vec<(Layer, PathBuf)>,
    apps: Vec<String>,
}

impl Layers {
    /// The layers of `project`.
    pub fn new(project: &Project) -> Self {
        Layers {
            root: project.root.clone(),
            project_scripts: project.scripts_dir(),
            project_templates: project.templates_dir(),
            user_scripts: project.user.scripts_dir(),
            user_templates: project.user.templates_dir(),
            plugins: Vec::new(),
            apps: project
                .config
                .as_ref()
                .map(|c| c.file.apps.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// The project's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// These layers with plugins (their layer and folder, most specific first) between the
    /// project and the user.
    pub fn with_plugins(mut self, plugins: impl IntoIterator<Item = (Layer, PathBuf)>) -> Self {
        self.plugins = plugins.into_iter().collect();
        self
    }

    /// The most specific file at `logical` that is neither the project's nor the user's: what
    /// `weft stdlib eject` copies.
    pub fn find_shipped(&self, kind: Kind, logical: &str) -> Option<LayerFile> {
        self.files(kind)
            .into_iter()
            .filter(|f| f.logical == logical)
            .filter(|f| matches!(f.layer, Layer::Plugin(..) | Layer::Stdlib))
            .min_by_key(|f| f.layer)
    }

    /// Every logical path of `kind`, sorted, with its winner.
    pub fn resolve_all(&self, kind: Kind) -> Vec<Resolved> {
        let mut by_path: BTreeMap<String, Vec<LayerFile>> = BTreeMap::new();
        for file in self.files(kind) {
            by_path.entry(file.logical.clone()).or_default().push(file);
        }
        by_path
            .into_values()
            .map(|mut files| {
                files.sort_by_key(|f| f.layer);
                let winner = files.remove(0);
                Resolved {
                    winner,
                    hidden: files,
                }
            })
            .collect()
    }

    /// The winning file at `logical`, if any layer has it.
    pub fn find(&self, kind: Kind, logical: &str) -> Option<LayerFile> {
        self.files(kind)
            .into_iter()
            .filter(|f| f.logical == logical)
            .min_by_key(|f| f.layer)
    }

    /// The stdlib file at `logical`, of any kind.
    pub fn stdlib_file(logical: &str) -> Option<LayerFile> {
        let text = STDLIB.get_file(logical)?.contents_utf8()?;
        Some(LayerFile {
            layer: Layer::Stdlib,
            logical: logical.to_string(),
            origin: Origin::Embedded(text),
        })
    }

    /// Where `weft stdlib eject` puts a copy of the stdlib file at `logical`.
    pub fn project_path(&self, kind: Kind, logical: &str) -> PathBuf {
        match kind {
            Kind::Script => self.root.join("deploy").join(logical),
            Kind::Template => self.root.join(logical),
        }
    }

    /// The kind of a logical path.
    pub fn kind_of(logical: &str) -> Kind {
        if logical.starts_with("templates/") {
            Kind::Template
        } else {
            Kind::Script
        }
    }

    fn files(&self, kind: Kind) -> Vec<LayerFile> {
        let (project, user) = match kind {
            Kind::Script => (&self.project_scripts, &self.user_scripts),
            Kind::Template => (&self.project_templates, &self.user_templates),
        };
        let prefix = match kind {
            Kind::Script => "",
            Kind::Template => "templates/",
        };
        let mut files = Vec::new();
        if let Some(dir) = project {
            files.extend(self.disk_files(Layer::Project, dir, prefix, kind));
        }
        for (layer, root) in &self.plugins {
            // A plugin is laid out like a project, and may also keep `services/`, `roles/`
            // and `lib/` at its top rather than under `deploy/`.
            match kind {
                Kind::Script => {
                    files.extend(self.disk_files(*layer, &root.join("deploy"), "", kind));
                    for sub in ["services", "roles", "lib"] {
                        let prefix = format!("{sub}/");
                        files.extend(self.disk_files(*layer, &root.join(sub), &prefix, kind));
                    }
                }
                Kind::Template => {
                    files.extend(self.disk_files(*layer, &root.join("templates"), prefix, kind));
                }
            }
        }
        if let Some(dir) = user {
            files.extend(self.disk_files(Layer::User, dir, prefix, kind));
        }
        files.extend(stdlib_files(kind));
        if kind == Kind::Script {
            files.extend(self.apps.iter().map(|name| app_goals(name)));
        }
        files
    }

    fn disk_files(&self, layer: Layer, dir: &Path, prefix: &str, kind: Kind) -> Vec<LayerFile> {
        WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_file())
            .filter_map(|entry| {
                let rel = entry.path().strip_prefix(dir).ok()?;
                let rel = rel.to_str()?.replace('\\', "/");
                if kind == Kind::Script && !rel.ends_with(".rhai") {
                    return None;
                }
                let path = entry.path().to_path_buf();
                let shown = match layer {
                    Layer::Project | Layer::Plugin(..) => {
                        path.strip_prefix(&self.root).unwrap_or(&path)
                    }
                    _ => &path,
                }
                .display()
                .to_string();
                Some(LayerFile {
                    layer,
                    logical: format!("{prefix}{rel}"),
                    origin: Origin::Disk { path, shown },
                })
            })
            .collect()
    }
}

/// The stdlib file the goals of each `[apps.NAME]` are made from, with `__APP__` for the app name.
const APP_GOALS: &str = "apps/goals.rhai.in";

/// The goals `NAME_build`, `NAME_deploy` ... of app `name`, in the stdlib layer so that any
/// project or user goal of the same name wins.
fn app_goals(name: &str) -> LayerFile {
    let text = STDLIB
        .get_file(APP_GOALS)
        .and_then(|f| f.contents_utf8())
        .unwrap_or_default();
    LayerFile {
        layer: Layer::Stdlib,
        logical: format!("apps/{name}.rhai"),
        origin: Origin::Generated(text.replace("__APP__", name)),
    }
}

fn stdlib_files(kind: Kind) -> Vec<LayerFile> {
    let mut out = Vec::new();
    collect_embedded(&STDLIB, &mut out);
    out.retain(|f| {
        let is_template = f.logical.starts_with("templates/");
        match kind {
            Kind::Template => is_template,
            Kind::Script => {
                !is_template && !f.logical.starts_with("skeletons/") && f.logical.ends_with(".rhai")
            }
        }
    });
    out
}

fn collect_embedded(dir: &'static Dir<'static>, out: &mut Vec<LayerFile>) {
    for file in dir.files() {
        if let (Some(path), Some(text)) = (file.path().to_str(), file.contents_utf8()) {
            out.push(LayerFile {
                layer: Layer::Stdlib,
                logical: path.replace('\\', "/"),
                origin: Origin::Embedded(text),
            });
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

/// The files of a stdlib skeleton, as (path inside the skeleton, text).
pub fn skeleton(name: &str) -> Option<Vec<(String, &'static str)>> {
    let dir = STDLIB.get_dir(format!("skeletons/{name}"))?;
    let mut files = Vec::new();
    collect_embedded(dir, &mut files);
    let prefix = format!("skeletons/{name}/");
    Some(
        files
            .into_iter()
            .filter_map(|f| match f.origin {
                Origin::Embedded(text) => {
                    Some((f.logical.strip_prefix(&prefix)?.to_string(), text))
                }
                Origin::Disk { .. } | Origin::Generated(_) => None,
            })
            .collect(),
    )
}

/// Each stdlib skeleton with its one-line description (its `ABOUT` file), for `weft init --help`.
pub fn skeleton_abouts() -> Vec<(String, String)> {
    skeleton_names()
        .into_iter()
        .map(|name| {
            let about = STDLIB
                .get_file(format!("skeletons/{name}/ABOUT"))
                .and_then(|f| f.contents_utf8())
                .unwrap_or_default()
                .trim()
                .to_string();
            (name, about)
        })
        .collect()
}

/// The names of the stdlib skeletons.
pub fn skeleton_names() -> Vec<String> {
    STDLIB
        .get_dir("skeletons")
        .map(|d| {
            d.dirs()
                .filter_map(|s| s.path().file_name()?.to_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
