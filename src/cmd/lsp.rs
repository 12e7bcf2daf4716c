//! `weft lsp`: the language server for editors, on stdin and stdout.

use miette::Result;

use super::Context;
use crate::error::EXIT_OK;

/// Serves the language server protocol until the editor exits.
pub fn lsp(ctx: &Context) -> Result<i32> {
    crate::lsp::serve(ctx.cwd.clone())?;
    Ok(EXIT_OK)
}
