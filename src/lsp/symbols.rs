//! Document symbols: the goals and helper functions a script defines.

use lsp_types::{DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse, SymbolKind};

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
