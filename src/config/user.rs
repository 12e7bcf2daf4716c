//! The user's personal defaults in `$XDG_CONFIG_HOME/weft/config.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::source::SourceFile;

/// Personal defaults that apply to every project.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The env used when neither `-e` nor the project names one.
    pub default_env: Option<String>,
    /// The SSH identity file used when a host names none.
    pub identity: Option<PathBuf>,
    /// The known_hosts file checked before `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// A personal scripts folder, layered between the project and the stdlib.
    pub scripts: Option<PathBuf>,
    /// A personal templates folder, layered between the project and the stdlib.
    pub templates: Option<PathBuf>,
    /// The folder the file was found in; relative paths above are taken from it.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// weft's folder under the XDG base folder `var` names (config, data, cache), else under
/// `~/<in_home>`; `None` when neither is set.
pub fn weft_dir(var: &str, in_home: &str) -> Option<PathBuf> {
    let base = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(in_home)))?;
    Some(base.join("weft"))
}

impl UserConfig {
    /// The user's config folder: `$XDG_CONFIG_HOME/weft`, else `~/.config/weft`.
    pub fn dir() -> Option<PathBuf> {
        weft_dir("XDG_CONFIG_HOME", ".config")
    }

    /// Loads the user config; a missing file is the empty config.
    pub fn load() -> Result<Self, ConfigError> {
        let Some(dir) = Self::dir() else {
            return Ok(Self::default());
        };
        let path = dir.join("config.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(UserConfig {
                    dir,
                    ..Self::default()
                })
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let source = SourceFile::new(path.display().to_string(), text);
        let mut config: UserConfig =
            toml::from_str(source.text()).map_err(|err| ConfigError::Syntax {
                message: err.message().to_string(),
                span: err.span().map(Into::into),
                src: source.named(),
            })?;
        config.dir = dir;
        Ok(config)
    }

    /// The personal scripts folder: configured, else `<config dir>/deploy` when it exists.
    pub fn scripts_dir(&self) -> Option<PathBuf> {
        self.folder(self.scripts.as_deref(), "deploy")
    }

    /// The personal templates folder: configured, else `<config dir>/templates` when it exists.
    pub fn templates_dir(&self) -> Option<PathBuf> {
        self.folder(self.templates.as_deref(), "templates")
    }

    fn folder(&self, configured: Option<&Path>, default: &str) -> Option<PathBuf> {
        match configured {
            Some(path) => Some(expand_home(&self.dir, path)),
            None => Some(self.dir.join(default)).filter(|p| p.is_dir()),
        }
    }
}

/// Resolves `~/x` against `$HOME` and a relative path against `base`.
pub fn expand_home(base: &Path, path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(rest);
        }
    }
    base.join(path)
}
