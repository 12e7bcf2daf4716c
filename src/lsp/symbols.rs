//! Document symbols (the goals and helper functions a script defines) and workspace symbols
//! (the goals of every layer).

use lsp_types::{
    DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse, SymbolInformation, SymbolKind,
    WorkspaceSymbolParams, WorkspaceSymbolResponse,
};

use super::{text, Server};
use crate::script::check;

/// The functions of the document, in file order.
pub fn symbols(
    server: &mut Server,
    params: DocumentSymbolParams,
) -> Option<DocumentSymbolResponse> {
    let source = server.document(&params.text_document.uri)?;
    #[allow(deprecated)]
    let symbols = check::outline(source)
        .into_iter()
        .map(|f| {
            let range = text::line_range(source, f.line);
            DocumentSymbol {
                detail: Some(format!(
                    "{}{}({})",
                    if f.private { "private fn " } else { "fn " },
                    f.name,
                    f.params.join(", ")
                )),
                name: f.name,
                kind: SymbolKind::FUNCTION,
                tags: None,
                deprecated: None,
                range,
                selection_range: range,
                children: None,
            }
        })
        .collect();
    Some(DocumentSymbolResponse::Nested(symbols))
}

/// The goals of every layer whose name contains the query (ignoring case).
pub fn workspace_symbols(
    server: &mut Server,
    params: WorkspaceSymbolParams,
) -> Option<WorkspaceSymbolResponse> {
    let query = params.query.to_lowercase();
    let names: Vec<(String, String)> = server
        .goals()
        .into_iter()
        .filter(|g| g.name.to_lowercase().contains(&query))
        .map(|g| (g.name.clone(), format!("{} ({})", g.file, g.layer)))
        .collect();
    #[allow(deprecated)]
    let symbols = names
        .into_iter()
        .filter_map(|(name, container)| {
            Some(SymbolInformation {
                location: server.goal_location(&name)?,
                name,
                kind: SymbolKind::FUNCTION,
                tags: None,
                deprecated: None,
                container_name: Some(container),
            })
        })
        .collect();
    Some(WorkspaceSymbolResponse::Flat(symbols))
}
