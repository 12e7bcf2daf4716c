//! `weft lsp`: a language server on stdio for `deploy/*.rhai` and `weft.toml`. This file is
//! the loop (documents, the project, dispatch); each feature has its own file.

mod actions;
mod buffers;
mod completion;
mod definition;
mod diagnostics;
mod hover;
mod symbols;
mod text;
mod workspace;

use std::collections::HashMap;
use std::path::PathBuf;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeConfiguration, DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument,
    DidSaveTextDocument, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest,
    Request as _, WorkspaceSymbolRequest,
};
use lsp_types::{
    CodeActionProviderCapability, CompletionOptions, HoverProviderCapability, InitializeParams,
    OneOf, PublishDiagnosticsParams, ServerCapabilities, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions, Uri,
};
use serde::de::DeserializeOwned;

use crate::script::docs::{self, FnDoc};
use workspace::Workspace;

/// Why the server stopped before its client said goodbye.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("language server: {0}")]
#[diagnostic(code(weft::lsp))]
pub struct LspError(String);

impl LspError {
    fn new(e: impl std::fmt::Display) -> Self {
        LspError(e.to_string())
    }
}

/// The server's state: open documents, the API reference and the project (loaded lazily).
pub(crate) struct Server {
    root: PathBuf,
    documents: HashMap<String, String>,
    functions: Vec<FnDoc>,
    workspace: Option<Workspace>,
    cache: PathBuf,
    /// The env a client named in `initializationOptions.env`, for `host.vars.`.
    env: Option<String>,
}

impl Server {
    fn workspace(&mut self) -> &Workspace {
        self.workspace
            .get_or_insert_with(|| Workspace::load(&self.root, self.env.as_deref()))
    }

    fn document(&self, uri: &Uri) -> Option<&str> {
        self.documents.get(uri.as_str()).map(String::as_str)
    }
}

/// Serves LSP on stdin and stdout until the client exits; `cwd` is the project when the
/// client names no root.
pub fn serve(cwd: PathBuf) -> Result<(), LspError> {
    let (connection, io_threads) = Connection::stdio();
    let capabilities = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::FULL),
                // Saves reload goals, templates and vars from disk.
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                ..TextDocumentSyncOptions::default()
            },
        )),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "\"".into()]),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        workspace_symbol_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        ..ServerCapabilities::default()
    };
    let caps = serde_json::to_value(capabilities).map_err(LspError::new)?;
    let params = connection.initialize(caps).map_err(LspError::new)?;
    let params: Option<InitializeParams> = serde_json::from_value(params).ok();
    #[allow(deprecated)]
    let root = params
        .as_ref()
        .and_then(|p| {
            p.workspace_folders
                .as_ref()
                .and_then(|f| f.first().map(|f| f.uri.clone()))
                .or_else(|| p.root_uri.clone())
        })
        .and_then(|uri| text::path_of(&uri))
        .unwrap_or(cwd);
    let env = params
        .as_ref()
        .and_then(|p| p.initialization_options.as_ref())
        .and_then(env_setting)
        .flatten();
    let mut server = Server {
        root,
        documents: HashMap::new(),
        functions: docs::functions(),
        workspace: None,
        cache: workspace::cache_dir(),
        env,
    };
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection
                    .handle_shutdown(&request)
                    .map_err(LspError::new)?
                {
                    break;
                }
                let response = server.request(request);
                connection
                    .sender
                    .send(Message::Response(response))
                    .map_err(LspError::new)?;
            }
            Message::Notification(notification) => {
                for out in server.notification(notification) {
                    connection
                        .sender
                        .send(Message::Notification(out))
                        .map_err(LspError::new)?;
                }
            }
            Message::Response(_) => {}
        }
    }
    drop(connection);
    io_threads.join().map_err(LspError::new)?;
    Ok(())
}

fn parse<T: DeserializeOwned>(id: &RequestId, params: serde_json::Value) -> Result<T, Response> {
    serde_json::from_value(params)
        .map_err(|e| Response::new_err(id.clone(), ErrorCode::InvalidParams as i32, e.to_string()))
}

fn reply<T: serde::Serialize>(id: RequestId, result: T) -> Response {
    match serde_json::to_value(result) {
        Ok(value) => Response::new_ok(id, value),
        Err(e) => Response::new_err(id, ErrorCode::InternalError as i32, e.to_string()),
    }
}

impl Server {
    fn request(&mut self, request: Request) -> Response {
        let Request { id, method, params } = request;
        let result = match method.as_str() {
            Completion::METHOD => {
                parse(&id, params).map(|p| reply(id.clone(), completion::complete(self, p)))
            }
            HoverRequest::METHOD => {
                parse(&id, params).map(|p| reply(id.clone(), hover::hover(self, p)))
            }
            GotoDefinition::METHOD => {
                parse(&id, params).map(|p| reply(id.clone(), definition::definition(self, p)))
            }
            DocumentSymbolRequest::METHOD => {
                parse(&id, params).map(|p| reply(id.clone(), symbols::symbols(self, p)))
            }
            CodeActionRequest::METHOD => {
                parse(&id, params).map(|p| reply(id.clone(), actions::actions(self, p)))
            }
            WorkspaceSymbolRequest::METHOD => {
                parse(&id, params).map(|p| reply(id.clone(), symbols::workspace_symbols(self, p)))
            }
            _ => Ok(Response::new_err(
                id.clone(),
                ErrorCode::MethodNotFound as i32,
                format!("weft lsp does not answer `{method}`"),
            )),
        };
        result.unwrap_or_else(|err| err)
    }

    fn notification(&mut self, notification: Notification) -> Vec<Notification> {
        let Notification { method, params } = notification;
        let uri = match method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Ok(p) = serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(params)
                else {
                    return Vec::new();
                };
                let uri = p.text_document.uri;
                self.documents
                    .insert(uri.as_str().to_string(), p.text_document.text);
                uri
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(params)
                else {
                    return Vec::new();
                };
                let uri = p.text_document.uri;
                // Full sync: the last change holds the whole text.
                if let Some(change) = p.content_changes.into_iter().last() {
                    self.documents.insert(uri.as_str().to_string(), change.text);
                }
                uri
            }
            DidSaveTextDocument::METHOD => {
                // Goals, templates and vars are read from disk: read them again.
                self.workspace = None;
                return Vec::new();
            }
            DidChangeConfiguration::METHOD => {
                // `{"weft": {"env": ...}}` (VS Code sends its `weft` section) or `{"env": ...}`.
                let settings = params.get("settings").cloned().unwrap_or_default();
                let settings = settings.get("weft").unwrap_or(&settings);
                if let Some(env) = env_setting(settings) {
                    self.env = env;
                    self.workspace = None;
                }
                return Vec::new();
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(params)
                {
                    self.documents.remove(p.text_document.uri.as_str());
                    return vec![publish(p.text_document.uri, Vec::new())];
                }
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        let Some(text) = self.document(&uri) else {
            return Vec::new();
        };
        let found = diagnostics::check(&uri, text);
        vec![publish(uri, found)]
    }
}

/// The env a client's settings name: `Some(None)` for an empty or null `env` (back to the
/// default env), `None` when they do not say.
fn env_setting(settings: &serde_json::Value) -> Option<Option<String>> {
    let env = settings.get("env")?;
    Some(env.as_str().filter(|e| !e.is_empty()).map(String::from))
}

fn publish(uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>) -> Notification {
    Notification::new(
        PublishDiagnostics::METHOD.to_string(),
        PublishDiagnosticsParams {
            uri,
            diagnostics,
            version: None,
        },
    )
}
