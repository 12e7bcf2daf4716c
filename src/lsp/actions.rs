//! Code actions: "eject to project" on a read-only stdlib copy, as one workspace edit that
//! creates the project's file with the stdlib text (what `weft stdlib eject` writes).

use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, CodeActionResponse,
    CreateFile, DocumentChangeOperation, DocumentChanges, OneOf,
    OptionalVersionedTextDocumentIdentifier, Range, ResourceOp, TextDocumentEdit, TextEdit,
    WorkspaceEdit,
};

use super::{text, Server};

/// The actions for the document: "eject" when it is a stdlib copy the project does not have.
pub fn actions(server: &mut Server, params: CodeActionParams) -> Option<CodeActionResponse> {
    let path = text::path_of(&params.text_document.uri)?;
    let logical = path
        .strip_prefix(server.cache.join("stdlib"))
        .ok()?
        .to_str()?
        .to_string();
    let (target, content) = server.workspace().eject(&logical)?;
    let uri = text::uri_of(&target)?;
    let shown = target
        .strip_prefix(&server.root)
        .unwrap_or(&target)
        .display()
        .to_string();
    let edit = WorkspaceEdit {
        document_changes: Some(DocumentChanges::Operations(vec![
            DocumentChangeOperation::Op(ResourceOp::Create(CreateFile {
                uri: uri.clone(),
                options: None,
                annotation_id: None,
            })),
            DocumentChangeOperation::Edit(TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier { uri, version: None },
                edits: vec![OneOf::Left(TextEdit::new(Range::default(), content))],
            }),
        ])),
        ..WorkspaceEdit::default()
    };
    Some(vec![CodeActionOrCommand::CodeAction(CodeAction {
        title: format!("Eject to project ({shown})"),
        kind: Some(CodeActionKind::SOURCE),
        edit: Some(edit),
        ..CodeAction::default()
    })])
}
