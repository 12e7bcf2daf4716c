//! Checks and outlines of one script's text, without a project: for editors (`weft lsp`).

mod host_param;

use std::sync::OnceLock;

use rhai::{ASTNode, Expr, FnAccess, OptimizationLevel};

use super::api::options;
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
    /// Its diagnostic code (`weft::script::syntax`, `weft::script::option`).
    pub code: &'static str,
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

/// The syntax errors of `text` (Rhai stops at the first one), else the keys of option maps
/// that the function they are given to does not take (`#{ modee: "0644" }`), unknown `host.`
/// members and, when its public functions are goals (`defines_goals`: not a `lib/` file),
/// goals with a wrong `host` parameter.
pub fn check_source(text: &str, defines_goals: bool) -> Vec<Problem> {
    let mut engine = compiler();
    // Unoptimized, so that constant option maps stay map literals with their positions.
    engine.set_optimization_level(OptimizationLevel::None);
    match engine.compile(text) {
        Ok(ast) => {
            let mut problems = Vec::new();
            let own: Vec<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
            ast.walk(&mut |path: &[ASTNode]| {
                if let Some(ASTNode::Expr(expr)) = path.last() {
                    check_options(expr, &mut problems);
                    check_host_member(expr, &own, &mut problems);
                }
                true
            });
            if defines_goals {
                problems.extend(host_param::check(&ast, text));
                problems.sort_by_key(|p| (p.line, p.column));
            }
            problems
        }
        Err(err) => {
            let pos = err.1;
            vec![Problem {
                line: pos.line().unwrap_or(1),
                column: pos.position().unwrap_or(1),
                message: err.0.to_string(),
                code: "weft::script::syntax",
            }]
        }
    }
}

/// Each API function's name and parameter names, from its signature.
fn signatures() -> &'static [(String, Vec<String>)] {
    static SIGNATURES: OnceLock<Vec<(String, Vec<String>)>> = OnceLock::new();
    SIGNATURES.get_or_init(|| {
        super::docs::functions()
            .into_iter()
            .filter_map(|f| {
                let (_, rest) = f.signature.split_once('(')?;
                let (params, _) = rest.rsplit_once(") -> ")?;
                let params = params
                    .split(", ")
                    .filter_map(|p| p.split(':').next())
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect();
                Some((f.name, params))
            })
            .collect()
    })
}

/// The methods and properties of `Host`: the API functions whose first parameter is a `Host`.
fn host_members() -> &'static [String] {
    static MEMBERS: OnceLock<Vec<String>> = OnceLock::new();
    MEMBERS.get_or_init(|| {
        let mut names: Vec<String> = super::docs::functions()
            .into_iter()
            .filter(|f| {
                f.signature.starts_with("Host.")
                    || f.signature
                        .split_once('(')
                        .and_then(|(_, rest)| rest.split([',', ')']).next())
                        .is_some_and(|first| first.trim().ends_with(": Host"))
            })
            .map(|f| f.name)
            .collect();
        names.dedup();
        names
    })
}

/// Checks `host.NAME` and `host.NAME(...)` against the members of `Host` and the script's
/// own functions.
fn check_host_member(expr: &Expr, own: &[String], problems: &mut Vec<Problem>) {
    let Expr::Dot(dot, _, _) = expr else { return };
    let Expr::Variable(variable, _, _) = &dot.lhs else {
        return;
    };
    if variable.1.as_str() != "host" {
        return;
    }
    let first = match &dot.rhs {
        Expr::Dot(inner, _, _) | Expr::Index(inner, _, _) => &inner.lhs,
        other => other,
    };
    let (name, pos) = match first {
        Expr::MethodCall(call, pos) => (call.name.as_str(), *pos),
        Expr::Property(property, pos) => (property.2.as_str(), *pos),
        _ => return,
    };
    let members = host_members();
    if members.iter().any(|m| m == name) || own.iter().any(|f| f == name) {
        return;
    }
    let known: Vec<&str> = members.iter().map(String::as_str).collect();
    let help = crate::suggest::help("functions", name, &known)
        .map_or_else(String::new, |h| format!("; {h}"));
    problems.push(Problem {
        line: pos.line().unwrap_or(1),
        column: pos.position().unwrap_or(1),
        message: format!("`Host` has no function or property `{name}`{help}"),
        code: "weft::script::unknown_function",
    });
}

/// Checks the option-map literals `expr` passes, when it calls an API function.
fn check_options(expr: &Expr, problems: &mut Vec<Problem>) {
    let (call, receiver) = match expr {
        Expr::FnCall(call, _) => (call, 0),
        Expr::MethodCall(call, _) => (call, 1),
        _ => return,
    };
    let count = call.args.len() + receiver;
    for (index, arg) in call.args.iter().enumerate() {
        let Expr::Map(map, map_pos) = arg else {
            continue;
        };
        let takes_options = signatures().iter().any(|(name, params)| {
            *name == call.name.as_str()
                && params.len() == count
                && params.get(index + receiver).map(String::as_str) == Some("options")
        });
        if !takes_options {
            continue;
        }
        let allowed = options::keys(&call.name);
        for (key, _) in map.0.iter() {
            if allowed.contains(&key.name.as_str()) {
                continue;
            }
            let help = crate::suggest::help("options", &key.name, allowed)
                .map_or_else(String::new, |h| format!("; {h}"));
            problems.push(Problem {
                line: key.pos.line().unwrap_or(1),
                column: key.pos.position().unwrap_or(1),
                message: format!("`{}` takes no option `{}`{help}", call.name, key.name),
                code: "weft::script::option",
            });
        }
        if call.name.as_str() == "cron" {
            let value = |name: &str| map.0.iter().find(|(k, _)| k.name == name).map(|(_, v)| v);
            // A `state` computed at run time may be `absent`: the call itself checks then.
            let absent = match value("state") {
                None => false,
                Some(Expr::StringConstant(state, _)) => state.as_str() == "absent",
                Some(_) => true,
            };
            let missing = options::cron_missing(
                absent,
                value("schedule").is_some(),
                value("command").is_some(),
            );
            if !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(|k| format!("`{k}`")).collect();
                problems.push(Problem {
                    line: map_pos.line().unwrap_or(1),
                    column: map_pos.position().unwrap_or(1),
                    message: format!(
                        "`cron` needs option {} (unless `state: \"absent\"`)",
                        names.join(" and ")
                    ),
                    code: "weft::script::option",
                });
            }
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
    use super::{check_source, fn_line, options, outline, signatures};

    #[test]
    fn syntax_errors_have_a_line() {
        let problems = check_source("fn ok(host) {\n  host.run(\"x\";\n}\n", true);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
        assert!(check_source("fn ok(host) { 1 }", true).is_empty());
        assert_eq!(problems[0].code, "weft::script::syntax");
    }

    #[test]
    fn unknown_option_keys_are_found_where_they_are_written() {
        let text = "fn f(host) {\n  host.file(\"/a\", #{ content: \"x\",\n    modee: \"0644\" });\n  host.template(\"t\", \"/d\", #{ anything: 1 });\n  file(host, \"/b\", #{ owner: \"x\", bogus: 1 });\n}\n";
        let problems = check_source(text, true);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].column), (3, 5));
        assert!(
            problems[0].message.contains("did you mean `mode`?"),
            "{problems:?}"
        );
        assert_eq!(problems[0].code, "weft::script::option");
        assert_eq!(problems[1].line, 5);
        assert!(problems[1].message.contains("`bogus`"), "{problems:?}");
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

    #[test]
    fn unknown_host_members_are_found() {
        let text = "fn f(host) {\n  host.packges([\"a\"]);\n  let n = host.nmae;\n  host.vars.x;\n  host.helper();\n  host.run(\"x\");\n}\nfn helper() {}\n";
        let problems = check_source(text, true);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].column), (2, 8));
        assert!(
            problems[0].message.contains("did you mean `packages`?"),
            "{problems:?}"
        );
        assert_eq!(problems[0].code, "weft::script::unknown_function");
        assert_eq!(problems[1].line, 3);
        assert!(problems[1].message.contains("`name`"), "{problems:?}");
    }

    #[test]
    fn option_keys_name_functions_that_take_options() {
        for name in options::table().iter().map(|o| o.function) {
            assert!(
                signatures()
                    .iter()
                    .any(|(n, params)| n == name && params.iter().any(|p| p == "options")),
                "`{name}` takes no `options` map"
            );
        }
        // And the other way: a function with an option map has its keys declared.
        for (name, params) in signatures() {
            if params.iter().any(|p| p == "options") {
                assert!(
                    !options::keys(name).is_empty(),
                    "`{name}` takes an `options` map but declares no option struct"
                );
            }
        }
    }

    #[test]
    fn the_stdlib_passes_its_own_checks() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib");
        let mut checked = 0;
        for entry in walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rhai") {
                let text = std::fs::read_to_string(path).expect("stdlib file");
                let lib = path.parent().is_some_and(|p| p.ends_with("lib"));
                assert_eq!(check_source(&text, !lib), [], "{}", path.display());
                checked += 1;
            }
        }
        assert!(checked > 5, "only {checked} stdlib scripts");
    }
}
