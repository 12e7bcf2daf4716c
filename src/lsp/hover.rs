//! Hover: the reference of an API function (the text of `weft doc NAME`), a goal's doc, where a
//! var is set, which layer a template comes from.

use lsp_types::{Hover, HoverContents, HoverParams, MarkupContent, MarkupKind};

use super::{text, Server};
use crate::script::docs::FnDoc;
use crate::script::Goal;

/// The reference of every overload of `name`, as `weft doc NAME` prints it, in Markdown.
pub fn api_doc(functions: &[FnDoc], name: &str) -> Option<String> {
    let found: Vec<String> = functions
        .iter()
        .filter(|f| f.name == name)
        .map(|f| format!("```rhai\n{}\n```\n\n{}", f.signature, f.doc))
        .collect();
    (!found.is_empty()).then(|| found.join("\n\n---\n\n"))
}

/// A goal's signature, doc and the file it comes from, in Markdown.
pub fn goal_doc(goal: &Goal) -> String {
    let mut params: Vec<&str> = goal.params.iter().map(String::as_str).collect();
    if goal.takes_host {
        params.insert(0, "host");
    }
    let mut out = format!("```rhai\nfn {}({})\n```\n\n", goal.name, params.join(", "));
    if !goal.doc.is_empty() {
        out.push_str(&goal.doc);
        out.push_str("\n\n");
    }
    out.push_str(&format!("goal from `{}` ({})", goal.file, goal.layer));
    out
}

/// The hover of the word under the cursor.
pub fn hover(server: &mut Server, params: HoverParams) -> Option<Hover> {
    let at = params.text_document_position_params;
    let source = server.document(&at.text_document.uri)?;
    let string = text::string_at(source, at.position);
    let word = text::word_at(source, at.position)?;
    let is_var = text::line_prefix(source, at.position)
        .trim_end_matches(text::is_word)
        .ends_with(".vars.");
    let value = if let Some(layers) = string.and_then(|s| server.workspace().template_layers(&s)) {
        let mut value = String::from("template");
        for (index, (file, layer)) in layers.iter().enumerate() {
            let role = if index == 0 { "from" } else { "hides" };
            value.push_str(&format!("\n- {role} `{file}` ({layer})"));
        }
        value
    } else if is_var {
        let workspace = server.workspace();
        let tables = workspace.vars().iter().find(|(n, _)| *n == word);
        let mut value = format!("var `{word}`");
        if let Some((_, tables)) = tables {
            value.push_str(", set in `weft.toml`:");
            for table in tables {
                value.push_str(&format!("\n- {table}"));
            }
        }
        // Its value on each host of the current env (`project` and `env` are set by weft).
        let found: Vec<String> = workspace
            .env_vars()
            .into_iter()
            .flat_map(|env| &env.hosts)
            .filter_map(|(host, vars)| Some(format!("\n- {host}: `{}`", vars.get(&word)?)))
            .collect();
        match workspace.env_vars() {
            Some(env) if !found.is_empty() => {
                value.push_str(&format!("\n\nin env `{}`:", env.env));
                value.push_str(&found.concat());
            }
            _ if tables.is_none() => return None,
            _ => {}
        }
        value
    } else if let Some(doc) = api_doc(&server.functions, &word) {
        doc
    } else {
        goal_doc(&server.goal(&word)?)
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range: None,
    })
}
