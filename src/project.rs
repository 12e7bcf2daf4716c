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
        let found = Self::find(start);
        if let Some(file) = &found {
            if file.parent() != Some(start) {
                // A weft.toml above the working folder decides what runs: say which one.
                eprintln!("weft: using {}", file.display());
            }
        }
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

    /// The nearest `weft.toml` from `start` upward. The climb stops at a folder that someone
    /// else could have put a weft.toml in: owned by another user (root aside) or writable by
    /// others (`/tmp`), so a file planted there never takes over a run.
    fn find(start: &Path) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        for dir in start.ancestors() {
            let candidate = dir.join(PROJECT_FILE);
            if candidate.is_file() {
                return Some(candidate);
            }
            let parent = dir.parent()?;
            let trusted = std::fs::metadata(parent).is_ok_and(|meta| {
                let owner_ok = meta.uid() == 0 || Some(meta.uid()) == me;
                let shared = meta.mode() & 0o002 != 0;
                owner_ok && !shared
            });
            if !trusted {
                return None;
            }
        }
        None
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
