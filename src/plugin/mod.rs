//! Plugins: folders laid out like a project, with a `plugin.toml`, whose files sit between the
//! project's and the user's in the layers.

pub mod lock;
pub mod manifest;
mod range;
pub mod vendor;

use std::path::{Path, PathBuf};

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use crate::layers::Layer;
use crate::project::Project;
use crate::source::SourceFile;
pub use manifest::{Manifest, MANIFEST};

/// One plugin a project uses.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// Its layer, with its place in `[plugins]`.
    pub layer: Layer,
    /// Its folder.
    pub root: PathBuf,
    /// Its `plugin.toml`.
    pub manifest: Manifest,
}

/// A var a plugin reads, as `weft doc` and `weft config schema` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginVar {
    /// The plugin's name.
    pub plugin: String,
    /// The var's name.
    pub name: String,
    /// What it is for.
    pub doc: String,
    /// Its default, when it has one (else weft.toml must set it).
    pub default: Option<toml::Value>,
}

/// Every var of `plugins`, in `[plugins]` order and then each manifest's.
pub fn vars(plugins: &[Plugin]) -> Vec<PluginVar> {
    plugins
        .iter()
        .flat_map(|p| {
            p.manifest.vars.iter().map(|(name, spec)| PluginVar {
                plugin: p.manifest.name.get_ref().clone(),
                name: name.clone(),
                doc: spec.get_ref().doc.clone(),
                default: spec.get_ref().default.clone(),
            })
        })
        .collect()
}

/// What is wrong with a project's plugins; each is known before any host is touched.
#[derive(Debug, Error, Diagnostic)]
pub enum PluginError {
    /// The folder `[plugins]` names has no `plugin.toml`.
    #[error("plugin `{name}`: `{path}` has no plugin.toml")]
    #[diagnostic(
        code(weft::plugin::missing),
        help(
            "a plugin is a folder with plugin.toml; `weft init --skeleton plugin NAME` writes one"
        )
    )]
    Missing {
        name: String,
        path: String,
        #[label("listed here")]
        span: Option<SourceSpan>,
        #[source_code]
        src: NamedSource<String>,
    },
    /// `plugin.toml` cannot be read.
    #[error("cannot read `{path}`: {message}")]
    #[diagnostic(code(weft::plugin::read))]
    Read { path: String, message: String },
    /// `plugin.toml` does not parse.
    #[error("invalid plugin.toml: {message}")]
    #[diagnostic(code(weft::plugin::syntax))]
    Syntax {
        message: String,
        #[label("{message}")]
        span: Option<SourceSpan>,
        #[source_code]
        src: NamedSource<String>,
    },
    /// The name in `plugin.toml` is not the `[plugins]` key, or not a valid name.
    #[error("plugin listed as `{listed}` calls itself `{name}`")]
    #[diagnostic(
        code(weft::plugin::name),
        help("use the name of plugin.toml (lowercase letters, digits, `-`, `_`) in [plugins] of weft.toml")
    )]
    Name {
        listed: String,
        name: String,
        #[label("this name")]
        span: SourceSpan,
        #[source_code]
        src: NamedSource<String>,
    },
    /// The plugin does not work with this weft.
    #[error("plugin `{name}` works with weft {range}, this is weft {version}")]
    #[diagnostic(
        code(weft::plugin::weft_version),
        help("use a version of the plugin made for weft {version}, or a weft in {range}")
    )]
    Incompatible {
        name: String,
        range: String,
        version: String,
        #[label("excludes {version}")]
        span: SourceSpan,
        #[source_code]
        src: NamedSource<String>,
    },
    /// The weft range does not parse.
    #[error("plugin `{name}`: `{part}` is not a version range")]
    #[diagnostic(
        code(weft::plugin::range),
        help("write comparators such as \">=0.1, <0.3\", \"^0.1\" or \"*\"")
    )]
    Range {
        name: String,
        part: String,
        #[label("here")]
        span: SourceSpan,
        #[source_code]
        src: NamedSource<String>,
    },
    /// Vendored plugin files differ from what `weft.lock` recorded.
    #[error("vendored plugin files changed since they were recorded in weft.lock:\n{list}")]
    #[diagnostic(
        code(weft::plugin::modified),
        help("`weft plugin verify` lists them; `weft plugin update NAME` fetches the plugin again, `weft plugin add --force` records a local copy as it is")
    )]
    Modified { list: String },
    /// Fetching a plugin with git failed.
    #[error("git {action} of `{source_name}` failed: {message}")]
    #[diagnostic(code(weft::plugin::git))]
    Git {
        action: &'static str,
        source_name: String,
        message: String,
    },
    /// What `weft plugin add` was given is neither a plugin folder nor a git repo.
    #[error("`{source_name}` is not a plugin: {message}")]
    #[diagnostic(
        code(weft::plugin::source),
        help("give a folder with plugin.toml, or a git URL or repo path with an optional @REF")
    )]
    Source {
        source_name: String,
        message: String,
    },
    /// A plugin holds a link or a special file, which weft never vendors nor reads.
    #[error("`{source_name}`: `{path}` is {what}")]
    #[diagnostic(
        code(weft::plugin::special_file),
        help("a plugin ships regular files and folders only: replace the link with the file it points to, in the plugin's source")
    )]
    Special {
        source_name: String,
        path: String,
        what: &'static str,
    },
    /// `weft plugin update` found the recorded tag at another commit.
    #[error("tag `{tag}` of plugin `{name}` moved: weft.lock has commit {old}, the source now has {new}")]
    #[diagnostic(
        code(weft::plugin::moved_tag),
        help("a release tag that moves is a re-release, or someone else's code under an old name: read what changed (`git log {old}..{new}` in the source), then take it with `weft plugin update {name} --allow-moved-tag`")
    )]
    MovedTag {
        name: String,
        tag: String,
        old: String,
        new: String,
    },
    /// The plugin is already vendored or not known.
    #[error("{message}")]
    #[diagnostic(code(weft::plugin::state))]
    State {
        message: String,
        #[help]
        help: Option<String>,
    },
    /// A var the plugin needs has no default and weft.toml does not set it.
    #[error("plugin `{name}` needs var `{var}`, which has no default and weft.toml does not set")]
    #[diagnostic(code(weft::plugin::var))]
    MissingVar {
        name: String,
        var: String,
        #[label("declared here without a default")]
        span: SourceSpan,
        #[source_code]
        src: NamedSource<String>,
        #[help]
        help: String,
    },
}

/// The plugins `project` lists, checked, most specific first. Var defaults of the plugins are
/// written into the project's `[vars]` where no layer of weft.toml sets them.
pub fn load(project: &mut Project) -> Result<Vec<Plugin>, PluginError> {
    let Some(config) = project.config.as_mut() else {
        return Ok(Vec::new());
    };
    let mut plugins = Vec::new();
    for (index, (listed, entry)) in config.file.plugins.iter().enumerate() {
        let root = project.root.join(&entry.get_ref().path);
        let file = root.join(MANIFEST);
        if file
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(PluginError::Special {
                source_name: format!("plugin `{listed}`"),
                path: format!("{}/{MANIFEST}", entry.get_ref().path),
                what: "a symbolic link",
            });
        }
        if !file.is_file() {
            return Err(PluginError::Missing {
                name: listed.clone(),
                path: entry.get_ref().path.clone(),
                span: Some(entry.span().into()),
                src: config.source.named(),
            });
        }
        let (manifest, source) = read_manifest(&file, &project.root)?;
        let name = manifest.name.get_ref();
        if name != listed || !manifest::valid_name(name) {
            return Err(PluginError::Name {
                listed: listed.clone(),
                name: name.clone(),
                span: manifest.name.span().into(),
                src: source.named(),
            });
        }
        check_range(&manifest, &source)?;
        // Names live as long as the process: a layer is a small `Copy` value.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let layer = Layer::Plugin(u16::try_from(index).unwrap_or(u16::MAX), leaked);
        plugins.push((
            Plugin {
                layer,
                root,
                manifest,
            },
            source,
        ));
    }
    for (plugin, source) in &plugins {
        for (var, spec) in &plugin.manifest.vars {
            if set_in_config(&config.file, var) {
                continue;
            }
            match &spec.get_ref().default {
                Some(value) => {
                    config.file.vars.insert(var.clone(), value.clone());
                }
                None => {
                    return Err(PluginError::MissingVar {
                        name: plugin.manifest.name.get_ref().clone(),
                        var: var.clone(),
                        span: spec.span().into(),
                        src: source.named(),
                        help: format!(
                            "set it in [vars] (or in the vars of every env) of {}{}",
                            config.source.name(),
                            doc_suffix(&spec.get_ref().doc)
                        ),
                    })
                }
            }
        }
    }
    Ok(plugins.into_iter().map(|(p, _)| p).collect())
}

/// Refuses to go on when a vendored plugin's files differ from `weft.lock`.
pub fn check_vendored(root: &Path) -> Result<(), PluginError> {
    let changes = lock::LockFile::load(root)?.changes(root)?;
    if changes.is_empty() {
        return Ok(());
    }
    let list = changes
        .iter()
        .map(|c| format!("  {c}"))
        .collect::<Vec<_>>()
        .join("\n");
    Err(PluginError::Modified { list })
}

fn doc_suffix(doc: &str) -> String {
    if doc.is_empty() {
        String::new()
    } else {
        format!(": {doc}")
    }
}

/// Whether weft.toml sets `var` for every env: in `[vars]`, or in the vars of each env.
fn set_in_config(file: &crate::config::ConfigFile, var: &str) -> bool {
    file.vars.contains_key(var)
        || (!file.env.is_empty() && file.env.values().all(|env| env.vars.contains_key(var)))
}

/// Reads and parses the `plugin.toml` at `file`, named relative to `root` when inside it.
pub fn read_manifest(file: &Path, root: &Path) -> Result<(Manifest, SourceFile), PluginError> {
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let read_error = |e: std::io::Error| PluginError::Read {
        path: shown.clone(),
        message: e.to_string(),
    };
    // Never through a link: a plugin.toml linked to another file would print its lines.
    let mut opened = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(file)
            .map_err(read_error)?
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut opened, &mut text).map_err(read_error)?;
    let source = SourceFile::new(shown, text);
    let manifest: Manifest = toml::from_str(source.text()).map_err(|e| PluginError::Syntax {
        message: e.message().to_string(),
        span: e.span().map(Into::into),
        src: source.named(),
    })?;
    Ok((manifest, source))
}

fn check_range(manifest: &Manifest, source: &SourceFile) -> Result<(), PluginError> {
    let version = env!("CARGO_PKG_VERSION");
    let range = manifest.weft.get_ref();
    let name = manifest.name.get_ref().clone();
    match range::matches(range, version) {
        Ok(true) => Ok(()),
        Ok(false) => Err(PluginError::Incompatible {
            name,
            range: range.clone(),
            version: version.into(),
            span: manifest.weft.span().into(),
            src: source.named(),
        }),
        Err(part) => Err(PluginError::Range {
            name,
            part,
            span: manifest.weft.span().into(),
            src: source.named(),
        }),
    }
}
