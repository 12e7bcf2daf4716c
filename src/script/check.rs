//! Checks and outlines of one script's text, without a project: for editors (`weft lsp`).

use rhai::FnAccess;

use super::engine::compiler;

/// One problem found in a script's text, at a 1-based line and column (characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line.
    pub line: usize,
    /// The 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A function a script defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnOutline {
    /// Its name.
    pub name: String,
    /// Its parameters.
    pub params: Vec<String>,
    /// Whether it is `private` (a helper, never a goal).
    pub private: bool,
    /// The 1-based line of its `fn`.
    pub line: usize,
    /// Its doc comment, without the slashes.
    pub doc: String,
}

/// The syntax errors of `text` (Rhai stops at the first one).
pub fn check_source(text: &str) -> Vec<Problem> {
    match compiler().compile(text) {
        Ok(_) => Vec::new(),
        Err(err) => {
            let pos = err.1;
            vec![Problem {
                line: pos.line().unwrap_or(1),
                column: pos.position().unwrap_or(1),
                message: err.0.to_string(),
            }]
        }
    }
}

/// The functions `text` defines, in file order; read from the lines that start with `fn`
/// when it does not compile (as while it is being typed).
pub fn outline(text: &str) -> Vec<FnOutline> {
    let Ok(ast) = compiler().compile(text) else {
        return outline_by_lines(text);
    };
    let mut fns: Vec<FnOutline> = ast
        .iter_functions()
        .filter(|f| !f.name.starts_with("anon$"))
        .map(|f| FnOutline {
            name: f.name.to_string(),
            params: f.params.iter().map(|p| p.to_string()).collect(),
            private: f.access == FnAccess::Private,
            line: fn_line(text, f.name).unwrap_or(1),
            doc: super::set::doc_text(&f.comments),
        })
        .collect();
    fns.sort_by_key(|f| f.line);
    fns
}

fn outline_by_lines(text: &str) -> Vec<FnOutline> {
    let mut fns = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("///") {
            doc.push(line);
            continue;
        }
        let (private, rest) = match line.strip_prefix("private ") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, line),
        };
        if let Some((name, params)) = rest
            .strip_prefix("fn ")
            .and_then(|r| r.split_once('('))
            .and_then(|(name, r)| Some((name.trim(), r.split_once(')')?.0)))
            .filter(|(name, _)| !name.is_empty())
        {
            fns.push(FnOutline {
                name: name.to_string(),
                params: params
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect(),
                private,
                line: index + 1,
                doc: super::set::doc_text(&doc),
            });
        }
        doc.clear();
    }
    fns
}

/// The 1-based line where `text` defines the function `name` (`fn name(`).
pub fn fn_line(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("private ").unwrap_or(line).trim_start();
            line.strip_prefix("fn ")
                .map(str::trim_start)
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.trim_start().starts_with('('))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::{check_source, fn_line, outline};

    #[test]
    fn syntax_errors_have_a_line() {
        let problems = check_source("fn ok(host) {\n  host.run(\"x\";\n}\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
        assert!(check_source("fn ok(host) { 1 }").is_empty());
    }

    #[test]
    fn outlines_list_functions_with_lines() {
        let text = "/// Deploys.\nfn deploy(host) {}\n\nprivate fn helper(a, b) {}\n";
        let fns = outline(text);
        assert_eq!(fns.len(), 2);
        assert_eq!(
            (fns[0].name.as_str(), fns[0].line, fns[0].private),
            ("deploy", 2, false)
        );
        assert_eq!(fns[0].doc, "Deploys.");
        assert_eq!(
            (fns[1].name.as_str(), fns[1].line, fns[1].private),
            ("helper", 4, true)
        );
        assert_eq!(fn_line(text, "helper"), Some(4));
        assert_eq!(fn_line(text, "help"), None);
        let broken = format!("{text}fn half(host) {{ host.");
        let fns = outline(&broken);
        assert_eq!(fns.len(), 3);
        assert_eq!(
            (fns[0].name.as_str(), fns[0].doc.as_str()),
            ("deploy", "Deploys.")
        );
        assert_eq!(
            (fns[1].params.len(), fns[2].name.as_str(), fns[2].line),
            (2, "half", 5)
        );
    }
}
