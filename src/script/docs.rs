//! The reference of every registered function, from its doc comment: for `weft doc` and editors.

use rhai::Engine;

use super::engine::ScriptEngine;

/// One registered function, as `weft doc` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FnDoc {
    /// Its name (`run`, or `get$name` shown as the property `name`).
    pub name: String,
    /// Its signature with parameter types.
    pub signature: String,
    /// Its doc comment without the slashes.
    pub doc: String,
}

fn api_engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(ScriptEngine::api_module());
    engine
}

/// Every function weft registers, sorted by name then signature.
pub fn functions() -> Vec<FnDoc> {
    let engine = api_engine();
    let mut docs = engine.collect_fn_metadata(
        None,
        |info| {
            let meta = info.metadata;
            let signature = meta.gen_signature(|t| t.into());
            let name = meta.name.to_string();
            let (name, signature) = match name.strip_prefix("get$") {
                Some(prop) => (prop.to_string(), format!("Host.{prop}")),
                None => (name, signature),
            };
            let doc = meta
                .comments
                .iter()
                .flat_map(|c| c.lines())
                .map(|l| {
                    let l = l.trim().trim_start_matches("///");
                    l.strip_prefix(' ').unwrap_or(l).to_string()
                })
                .collect::<Vec<_>>()
                .join("\n");
            Some(FnDoc {
                name,
                signature: readable_types(&signature)
                    .replace("&mut ", "")
                    .replace("&str", "String")
                    .replace("ImmutableString", "String"),
                doc: doc.trim().to_string(),
            })
        },
        false,
    );
    docs.sort_by(|a, b| a.name.cmp(&b.name).then(a.signature.cmp(&b.signature)));
    docs
}

/// Rhai definition files for editors and language servers (`editors/weft.d.rhai`).
pub fn definitions() -> String {
    readable_types(
        &api_engine()
            .definitions()
            .include_standard_packages(false)
            .single_file(),
    )
}

/// Shows fallible functions by what they return to scripts: `Result<T, Box<EvalAltResult>>`
/// is `T`, and an untyped `?` is `Dynamic`.
fn readable_types(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("Result<") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "Result<".len()..];
        match after.find(", Box<EvalAltResult>>") {
            Some(end) => {
                out.push_str(after[..end].trim());
                rest = &after[end + ", Box<EvalAltResult>>".len()..];
            }
            None => {
                out.push_str("Result<");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("-> ?", "-> Dynamic")
}
