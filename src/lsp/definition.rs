//! Go to definition: a function of the same file, else a goal of any layer; the script an
//! `import` string names, the template a string names. Stdlib files open as read-only copies
//! in the cache folder.

use lsp_types::{GotoDefinitionParams, GotoDefinitionResponse, Location};

use super::{text, Server};
use crate::script::check;

/// Where the word under the cursor is defined.
pub fn definition(
    server: &mut Server,
    params: GotoDefinitionParams,
) -> Option<GotoDefinitionResponse> {
    let at = params.text_document_position_params;
    let uri = at.text_document.uri;
    let source = server.document(&uri)?;
    let string = text::string_at(source, at.position);
    let is_import = text::line_prefix(source, at.position)
        .trim_start()
        .starts_with("import ");
    if let Some(string) = string {
        let cache = server.cache.clone();
        let workspace = server.workspace();
        let path = if is_import {
            workspace.import_location(&string, &cache)
        } else {
            workspace.template_location(&string, &cache)
        };
        if let Some(path) = path {
            let start = lsp_types::Range::default();
            return Some(GotoDefinitionResponse::Scalar(Location::new(
                text::uri_of(&path)?,
                start,
            )));
        }
    }
    let source = server.document(&uri)?;
    let word = text::word_at(source, at.position)?;
    if let Some(f) = check::outline(source).into_iter().find(|f| f.name == word) {
        let range = text::line_range(source, f.line);
        return Some(GotoDefinitionResponse::Scalar(Location::new(uri, range)));
    }
    let cache = server.cache.clone();
    let (path, line) = server.workspace().goal_location(&word, &cache)?;
    let target = std::fs::read_to_string(&path).unwrap_or_default();
    let range = text::line_range(&target, line);
    Some(GotoDefinitionResponse::Scalar(Location::new(
        text::uri_of(&path)?,
        range,
    )))
}
