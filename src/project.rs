//! Finding the project: `weft.toml` in the working directory or above it, as cargo does.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, ProjectConfig, UserConfig};

/// The name of the project file.
pub const PROJECT_FILE: &str = "weft.toml";

/// The project weft runs in (possibly none) and the user's defaults.
#[derive(Debug)]
pub struct Project {
    /// The folder holding `weft.toml`, or the working directory when there is none.
    pub root: PathBuf,
    /// The parsed `weft.toml`, when one was found.
    pub config: Option<ProjectConfig>,
    /// The user's personal config.
    pub user: UserConfig,
}

impl Project {
    /// Finds and loads the project that `start` lies in, if any.
    pub fn discover(start: &Path) -> Result<Self, ConfigError> {
        let user = UserConfig::load()?;
        let found = start
            .ancestors()
            .map(|dir| dir.join(PROJECT_FILE))
            .find(|candidate| candidate.is_file());
        let Some(file) = found else {
            return Ok(Project {
                root: start.to_path_buf(),
                config: None,
                user,
            });
        };
        let config = ProjectConfig::load(&file)?;
        let root = file
            .parent()
            .map_or_else(|| start.to_path_buf(), Path::to_path_buf);
        Ok(Project {
            root,
            config: Some(config),
            user,
        })
    }

    /// The project's name: configured, else the folder's name.
    pub fn name(&self) -> String {
        self.config
            .as_ref()
            .and_then(|c| c.file.project.name.clone())
            .or_else(|| {
                self.root
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "weft".into())
    }

    /// The project's `deploy/` folder, when there is a project.
    pub fn scripts_dir(&self) -> Option<PathBuf> {
        self.config.as_ref().map(|_| self.root.join("deploy"))
    }

    /// The project's `templates/` folder, when there is a project.
    pub fn templates_dir(&self) -> Option<PathBuf> {
        self.config.as_ref().map(|_| self.root.join("templates"))
    }
}
