//! Completion: goal names in `run_goal("`, template names in `.template("`, the current env's
//! merged vars after `host.vars.` (and their keys after `host.vars.NAME.`), host functions
//! and properties after `.`, and every API function and goal elsewhere.

use std::collections::BTreeMap;

use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse, Documentation,
    MarkupContent, MarkupKind,
};

use super::hover::{api_doc, goal_doc};
use super::{text, Server};
use crate::script::api::options;
use crate::script::docs::FnDoc;

/// What the cursor is in.
#[derive(Debug, PartialEq, Eq)]
enum Site {
    /// A string argument of `run_goal(` or `goal_exists(`.
    GoalName,
    /// The name argument of `.template(`.
    TemplateName,
    /// The path of `import "`.
    ImportName,
    /// After `host.vars.` and the keys after it (`host.vars.apps.hello.`): those keys.
    Var(Vec<String>),
    /// After `.`: a method or property of `Host`.
    Member,
    /// A key of the option map given to the function named.
    OptionKey(String),
    /// Anywhere else.
    Global,
}

/// The function whose option map `before` (the text before the cursor) is in, when the cursor
/// is where a key goes: `host.file(p, #{ mode: "0644", |`.
fn option_map_of(before: &str) -> Option<String> {
    let open = before.rfind("#{")?;
    let inside = &before[open + 2..];
    if inside.contains('}') || inside.contains('"') && inside.matches('"').count() % 2 == 1 {
        return None;
    }
    let segment = inside.rsplit(',').next().unwrap_or(inside);
    if segment.contains(':') || !segment.trim().chars().all(text::is_word) {
        return None;
    }
    // The call the map is an argument of: the unclosed `(` before it.
    let mut depth = 0usize;
    let call = before[..open]
        .char_indices()
        .rev()
        .find_map(|(i, c)| match c {
            ')' | ']' | '}' => {
                depth += 1;
                None
            }
            '(' | '[' | '{' if depth > 0 => {
                depth -= 1;
                None
            }
            '(' => Some(i),
            _ => None,
        })?;
    let name = text::trailing_word(&before[..call]);
    (!name.is_empty()).then_some(name)
}

fn site(prefix: &str) -> Site {
    let word_start = prefix
        .char_indices()
        .rev()
        .take_while(|(_, c)| text::is_word(*c))
        .last()
        .map_or(prefix.len(), |(i, _)| i);
    // Inside a string: what precedes its opening quote.
    if let Some(quote) = prefix.rfind('"') {
        let open = prefix[..quote].matches('"').count().is_multiple_of(2);
        if open {
            let before = prefix[..quote].trim_end();
            if before.ends_with("run_goal(") || before.ends_with("goal_exists(") {
                return Site::GoalName;
            }
            if before.ends_with(".template(") || before.ends_with(".render(") {
                return Site::TemplateName;
            }
            if before == "import" {
                return Site::ImportName;
            }
        }
    }
    let before = &prefix[..word_start];
    if let Some(path) = var_path(before) {
        Site::Var(path)
    } else if before.ends_with('.') {
        Site::Member
    } else {
        Site::Global
    }
}

/// The keys between `.vars.` and the cursor when `before` (the text before the word at the
/// cursor) is a chain `X.vars.a.b.`: `["a", "b"]`.
fn var_path(before: &str) -> Option<Vec<String>> {
    let mut rest = before.strip_suffix('.')?;
    let mut keys = Vec::new();
    loop {
        let start = rest
            .char_indices()
            .rev()
            .find(|(_, c)| !text::is_word(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &rest[start..];
        if word.is_empty() {
            return None;
        }
        if word == "vars" && rest[..start].ends_with('.') {
            keys.reverse();
            return Some(keys);
        }
        keys.push(word.to_string());
        rest = rest[..start].strip_suffix('.')?;
    }
}

/// A var's value in a line: JSON, cut short.
fn short(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(59).collect::<String>())
    } else {
        text
    }
}

/// The keys of the current env's vars at `path`, each with its value on every host.
fn var_items(server: &mut Server, path: &[String]) -> Vec<CompletionItem> {
    let workspace = server.workspace();
    let Some(env) = workspace.env_vars() else {
        // No env resolves (an unknown env named): every var `weft.toml` sets anywhere.
        if !path.is_empty() {
            return Vec::new();
        }
        return workspace
            .vars()
            .iter()
            .map(|(name, tables)| CompletionItem {
                label: name.clone(),
                kind: Some(CompletionItemKind::VARIABLE),
                detail: Some(format!("var: {}", tables.join(", "))),
                ..CompletionItem::default()
            })
            .collect();
    };
    let mut keys: BTreeMap<&str, Vec<(&str, &serde_json::Value)>> = BTreeMap::new();
    for (host, vars) in &env.hosts {
        let mut table = Some(vars);
        for key in path {
            table = table.and_then(|t| t.get(key)).and_then(|v| v.as_object());
        }
        for (key, value) in table.into_iter().flatten() {
            keys.entry(key).or_default().push((host, value));
        }
    }
    keys.into_iter()
        .map(|(key, values)| {
            let same = values.iter().all(|(_, v)| *v == values[0].1);
            let detail = if same && values.len() == env.hosts.len() {
                format!("= {}", short(values[0].1))
            } else {
                "differs by host".to_string()
            };
            let mut doc = format!("var `{key}` in env `{}`:", env.env);
            for (host, value) in &values {
                doc.push_str(&format!("\n- {host}: `{}`", short(value)));
            }
            CompletionItem {
                label: key.to_string(),
                kind: Some(if path.is_empty() {
                    CompletionItemKind::VARIABLE
                } else {
                    CompletionItemKind::FIELD
                }),
                detail: Some(detail),
                documentation: markdown(doc),
                ..CompletionItem::default()
            }
        })
        .collect()
}

/// Whether a function is a method or property of `Host` (its first parameter is a `Host`).
fn is_member(f: &FnDoc) -> bool {
    f.signature.starts_with("Host.")
        || f.signature
            .split_once('(')
            .and_then(|(_, rest)| rest.split([',', ')']).next())
            .is_some_and(|first| first.trim().ends_with(": Host"))
}

fn markdown(value: String) -> Option<Documentation> {
    Some(Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    }))
}

fn api_items(functions: &[FnDoc], members: bool) -> Vec<CompletionItem> {
    let mut by_name: BTreeMap<&str, Vec<&FnDoc>> = BTreeMap::new();
    for f in functions.iter().filter(|f| is_member(f) == members) {
        by_name.entry(f.name.as_str()).or_default().push(f);
    }
    by_name
        .into_iter()
        .map(|(name, overloads)| {
            let property = overloads.iter().all(|f| f.signature.starts_with("Host."));
            CompletionItem {
                label: name.to_string(),
                kind: Some(if property {
                    CompletionItemKind::PROPERTY
                } else if members {
                    CompletionItemKind::METHOD
                } else {
                    CompletionItemKind::FUNCTION
                }),
                detail: overloads.first().map(|f| f.signature.clone()),
                documentation: api_doc(functions, name).and_then(markdown),
                ..CompletionItem::default()
            }
        })
        .collect()
}

/// The completions at the cursor.
pub fn complete(server: &mut Server, params: CompletionParams) -> Option<CompletionResponse> {
    let at = params.text_document_position;
    let source = server.document(&at.text_document.uri)?;
    let before = &source[..text::offset(source, at.position)];
    let site = match option_map_of(before) {
        Some(function) if !options::keys(&function).is_empty() => Site::OptionKey(function),
        _ => site(text::line_prefix(source, at.position)),
    };
    let items = match site {
        Site::OptionKey(function) => options::of(&function)
            .map(|o| o.docs.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|key| CompletionItem {
                label: key.name.to_string(),
                kind: Some(CompletionItemKind::FIELD),
                detail: Some(format!("option of {function}")),
                documentation: (!key.doc.is_empty())
                    .then(|| Documentation::String(key.doc.clone())),
                insert_text: Some(format!("{}: ", key.name)),
                ..CompletionItem::default()
            })
            .collect(),
        Site::Member => api_items(&server.functions, true),
        Site::Global => {
            let mut items = api_items(&server.functions, false);
            items.extend(goal_items(server));
            items
        }
        Site::GoalName => goal_items(server),
        Site::TemplateName => server
            .workspace()
            .templates()
            .into_iter()
            .map(|(name, layer)| CompletionItem {
                label: name,
                kind: Some(CompletionItemKind::FILE),
                detail: Some(format!("template ({layer})")),
                ..CompletionItem::default()
            })
            .collect(),
        Site::ImportName => server
            .workspace()
            .imports()
            .into_iter()
            .map(|(name, layer)| CompletionItem {
                label: name,
                kind: Some(CompletionItemKind::MODULE),
                detail: Some(format!("script ({layer})")),
                ..CompletionItem::default()
            })
            .collect(),
        Site::Var(path) => var_items(server, &path),
    };
    Some(CompletionResponse::Array(items))
}

fn goal_items(server: &mut Server) -> Vec<CompletionItem> {
    server
        .goals()
        .into_iter()
        .map(|goal| CompletionItem {
            label: goal.name.clone(),
            kind: Some(CompletionItemKind::FUNCTION),
            detail: Some(format!("goal ({})", goal.layer)),
            documentation: markdown(goal_doc(&goal)),
            ..CompletionItem::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{option_map_of, site, Site};

    #[test]
    fn option_maps_by_their_function() {
        assert_eq!(option_map_of("  host.file(p, #{ ").as_deref(), Some("file"));
        assert_eq!(
            option_map_of("  host.file(join(a, b), #{ mode: \"0644\", ow").as_deref(),
            Some("file")
        );
        assert_eq!(
            option_map_of("  host.file(p, #{\n    mode: \"0644\",\n    ").as_deref(),
            Some("file")
        );
        assert_eq!(option_map_of("  host.file(p, #{ mode: \"06"), None);
        assert_eq!(option_map_of("  host.file(p, #{ mode: 1 });\n  x"), None);
        assert_eq!(option_map_of("  let m = #{ "), None);
    }

    #[test]
    fn sites_by_what_precedes_the_cursor() {
        assert_eq!(site("    run_goal(\"web_de"), Site::GoalName);
        assert_eq!(site("  host.template(\"ngi"), Site::TemplateName);
        assert_eq!(site("  host.template(\"a\", \"b"), Site::Global);
        assert_eq!(site("  let x = host.vars.po"), Site::Var(vec![]));
        assert_eq!(
            site("  let x = host.vars.apps.hello.re"),
            Site::Var(vec!["apps".into(), "hello".into()])
        );
        assert_eq!(site("  let x = vars.po"), Site::Member);
        assert_eq!(site("  f(\"é\").vars."), Site::Var(vec![]));
        assert_eq!(site("  host.ru"), Site::Member);
        assert_eq!(site("  host."), Site::Member);
        assert_eq!(site("  pack"), Site::Global);
        assert_eq!(site("import \"lib/a"), Site::ImportName);
    }
}
