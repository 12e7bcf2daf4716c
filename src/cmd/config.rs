//! `weft config schema`: the JSON schema of `weft.toml`, for editors.

use std::io::Write;

use miette::Result;

use crate::cli::ConfigCommand;
use crate::error::EXIT_OK;

/// Prints what the `weft config` subcommand asks for.
pub fn config(command: ConfigCommand) -> Result<i32> {
    match command {
        ConfigCommand::Schema => {
            // `{:#}` is serde_json's pretty printing; a reader that stops early (`| head`) is
            // not an error.
            let _ = writeln!(std::io::stdout().lock(), "{:#}", crate::config::schema());
        }
    }
    Ok(EXIT_OK)
}
