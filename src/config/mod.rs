//! Configuration: the project's `weft.toml` and the user's personal defaults.

#[cfg(feature = "aws-secrets")]
mod aws_secret;
mod project;
mod schema;
pub mod secret;
mod user;

pub use project::{
    project_namespace, ConfigFile, ConnectorKind, EnvSection, HostEntry, MachineEntry,
    ProjectConfig, ProviderKind, RoleEntry,
};
pub use schema::{schema, AppSettings, Setting};
pub use user::{expand_home, weft_dir, UserConfig};

/// The env that always exists: this machine through the local connector.
pub const LOCAL_ENV: &str = "local";

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

/// Everything that can be wrong with a config file.
#[derive(Debug, Error, Diagnostic)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read `{path}`")]
    #[diagnostic(code(weft::config::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not parse or does not match the schema.
    #[error("{message}")]
    #[diagnostic(code(weft::config::syntax))]
    Syntax {
        message: String,
        #[label("here")]
        span: Option<SourceSpan>,
        #[source_code]
        src: NamedSource<String>,
    },
    /// The TOML parses but says something inconsistent.
    #[error("{message}")]
    #[diagnostic(code(weft::config::invalid))]
    Invalid {
        message: String,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
        #[source_code]
        src: NamedSource<String>,
    },
}
