//! Go to definition: a function of the same file, a function of an imported module
//! (`app::deploy`), else a goal of any layer; the script an `import` string names, the
//! template a string names. Stdlib files open as read-only copies
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
    if let Some(module) = module_prefix(source, at.position, &word) {
        let cache = server.cache.clone();
        let path = server.workspace().import_location(&module, &cache)?;
        let target = std::fs::read_to_string(&path).ok()?;
        let line = check::fn_line(&target, &word)?;
        return Some(GotoDefinitionResponse::Scalar(Location::new(
            text::uri_of(&path)?,
            text::line_range(&target, line),
        )));
    }
    if let Some(f) = check::outline(source).into_iter().find(|f| f.name == word) {
        let range = text::line_range(source, f.line);
        return Some(GotoDefinitionResponse::Scalar(Location::new(uri, range)));
    }
    server
        .goal_location(&word)
        .map(GotoDefinitionResponse::Scalar)
}

/// The import path of the module `word` is called through (`app::deploy` with
/// `import "lib/app" as app;` in `source`: `lib/app`).
fn module_prefix(source: &str, pos: lsp_types::Position, word: &str) -> Option<String> {
    let prefix = text::line_prefix(source, pos);
    // The cursor may be anywhere in the word: take the text before the word's start.
    let at = prefix.len()
        - prefix
            .chars()
            .rev()
            .take_while(|c| text::is_word(*c))
            .map(char::len_utf8)
            .sum::<usize>();
    let before = prefix[..at].strip_suffix("::")?;
    let alias = text::trailing_word(before);
    if alias.is_empty() || word.is_empty() {
        return None;
    }
    source.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("import")?.trim_start();
        let rest = rest.strip_prefix('"')?;
        let (path, rest) = rest.split_once('"')?;
        let named = rest.trim_start().strip_prefix("as")?.trim_start();
        let named = named.trim_end().trim_end_matches(';').trim_end();
        (named == alias).then(|| path.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::module_prefix;
    use lsp_types::Position;

    #[test]
    fn module_functions_by_their_import() {
        let text = "import \"lib/app\" as app;\nfn f(host) {\n    app::deploy(host);\n    deploy(host);\n}\n";
        let at = |line, character| Position::new(line, character);
        assert_eq!(
            module_prefix(text, at(2, 12), "deploy").as_deref(),
            Some("lib/app")
        );
        assert_eq!(
            module_prefix(text, at(2, 15), "deploy").as_deref(),
            Some("lib/app")
        );
        assert_eq!(module_prefix(text, at(3, 6), "deploy"), None);
        assert_eq!(module_prefix(text, at(2, 6), "app"), None);
    }
}
