//! Goals with a wrong `host` parameter. weft runs a goal once per host only when its first
//! parameter is named `host` (`script::set`); any other goal runs once on the controller with
//! every parameter taken from the command line. So `fn deploy(version, host)`, `fn deploy(h)
//! { h.run(..) }` and `fn deploy() { host.run(..) }` all fail at run time, far from the cause.

use rhai::{ASTNode, Expr, FnAccess, Stmt, AST};

use super::{fn_line, host_members, Problem};

const CODE: &str = "weft::script::host_param";

/// One public function of the file: a goal.
struct GoalFn {
    name: String,
    params: Vec<String>,
    line: usize,
}

/// What the walk saw of `host` and of the members of `Host`, with 1-based line and column.
#[derive(Default)]
struct Seen {
    /// Reads of a variable named `host`.
    host_reads: Vec<(usize, usize)>,
    /// Lines where `host` is declared by `let`, `const`, `for` or a closure parameter.
    host_declared: Vec<usize>,
    /// `VAR.MEMBER` where MEMBER is a function or property of `Host`: (line, VAR, MEMBER).
    member_uses: Vec<(usize, String, String)>,
}

/// The problems of the goals `ast` defines (`text` is its source, for lines and columns).
pub(super) fn check(ast: &AST, text: &str) -> Vec<Problem> {
    let mut goals: Vec<GoalFn> = ast
        .iter_functions()
        .filter(|f| f.access != FnAccess::Private && !f.name.starts_with("anon$"))
        .filter_map(|f| {
            Some(GoalFn {
                name: f.name.to_string(),
                params: f.params.iter().map(|p| p.to_string()).collect(),
                line: fn_line(text, f.name)?,
            })
        })
        .collect();
    goals.sort_by_key(|g| g.line);
    // Closures compile to `anon$` functions whose parameters are the closure's own and the
    // variables it captures: a `host` among them is declared where the closure is written.
    let closure_takes_host = ast
        .iter_functions()
        .any(|f| f.name.starts_with("anon$") && f.params.contains(&"host"));
    let mut seen = Seen::default();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(expr)) => look_at_expr(expr, &mut seen),
            Some(ASTNode::Stmt(stmt)) => look_at_stmt(stmt, &mut seen),
            _ => {}
        }
        true
    });
    // A node belongs to the function whose `fn` line is the last one before it.
    let owner = |line: usize| goals.iter().rposition(|g| g.line <= line);
    let mut problems = Vec::new();
    for (index, goal) in goals.iter().enumerate() {
        let position = goal.params.iter().position(|p| p == "host");
        if let Some(position) = position.filter(|p| *p > 0) {
            problems.push(Problem {
                line: goal.line,
                column: param_column(text, goal, position),
                message: format!(
                    "`host` is parameter {} of goal `{}`: weft passes the host only as the first parameter, so this `host` is a string from the command line; make `host` the first parameter",
                    position + 1,
                    goal.name
                ),
                code: CODE,
            });
            continue;
        }
        if position.is_some() {
            continue;
        }
        if let Some(first) = goal.params.first() {
            let used = seen
                .member_uses
                .iter()
                .find(|(line, var, _)| var == first && owner(*line) == Some(index));
            if let Some((_, var, member)) = used {
                problems.push(Problem {
                    line: goal.line,
                    column: param_column(text, goal, 0),
                    message: format!(
                        "goal `{}` uses its first parameter `{var}` as a host (`{var}.{member}`), but weft passes the host only to a first parameter named `host`: `{var}` is a string from the command line; rename it `host`",
                        goal.name
                    ),
                    code: CODE,
                });
                continue;
            }
        }
        let declared =
            closure_takes_host || seen.host_declared.iter().any(|l| owner(*l) == Some(index));
        let read = seen
            .host_reads
            .iter()
            .find(|(line, _)| owner(*line) == Some(index));
        if let (Some(&(line, column)), false) = (read, declared) {
            problems.push(Problem {
                line,
                column,
                message: format!(
                    "goal `{}` uses `host` but takes no `host` parameter: it runs once on the controller, where `host` is not defined; make `host` its first parameter",
                    goal.name
                ),
                code: CODE,
            });
        }
    }
    problems
}

fn look_at_expr(expr: &Expr, seen: &mut Seen) {
    match expr {
        Expr::Variable(variable, _, pos) if variable.1.as_str() == "host" => {
            seen.host_reads
                .push((pos.line().unwrap_or(1), pos.position().unwrap_or(1)));
        }
        Expr::Dot(dot, _, pos) => {
            let Expr::Variable(variable, _, _) = &dot.lhs else {
                return;
            };
            let first = match &dot.rhs {
                Expr::Dot(inner, _, _) | Expr::Index(inner, _, _) => &inner.lhs,
                other => other,
            };
            let member = match first {
                Expr::MethodCall(call, _) => call.name.as_str(),
                Expr::Property(property, _) => property.2.as_str(),
                _ => return,
            };
            if host_members().iter().any(|m| m == member) {
                seen.member_uses.push((
                    pos.line().unwrap_or(1),
                    variable.1.to_string(),
                    member.to_string(),
                ));
            }
        }
        _ => {}
    }
}

fn look_at_stmt(stmt: &Stmt, seen: &mut Seen) {
    match stmt {
        Stmt::Var(var, _, pos) if var.0.name == "host" => {
            seen.host_declared.push(pos.line().unwrap_or(1));
        }
        Stmt::For(each, pos)
            if each.0.name == "host" || each.1.as_ref().is_some_and(|i| i.name == "host") =>
        {
            seen.host_declared.push(pos.line().unwrap_or(1));
        }
        _ => {}
    }
}

/// The 1-based column of parameter `index` of `goal` on its `fn` line (the line's first
/// column when the parameters are not all on it).
fn param_column(text: &str, goal: &GoalFn, index: usize) -> usize {
    let line = text.lines().nth(goal.line - 1).unwrap_or_default();
    let Some(open) = line.find('(') else {
        return 1;
    };
    let mut at = open + 1;
    for (i, param) in line[open + 1..].split([',', ')']).enumerate() {
        if i == index {
            let lead = param.len() - param.trim_start().len();
            return line[..at + lead].chars().count() + 1;
        }
        at += param.len() + 1;
    }
    1
}

#[cfg(test)]
mod tests {
    use super::super::check_source;

    fn found(text: &str) -> Vec<(usize, usize, String)> {
        check_source(text, true)
            .into_iter()
            .filter(|p| p.code == super::CODE)
            .map(|p| (p.line, p.column, p.message))
            .collect()
    }

    #[test]
    fn host_after_the_first_parameter() {
        let problems = found("fn deploy(version, host) {\n  host.run(\"x\");\n}\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].0, problems[0].1), (1, 20));
        assert!(
            problems[0].2.contains("parameter 2 of goal `deploy`"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_first_parameter_used_as_a_host_under_another_name() {
        let problems = found("/// Doc.\nfn deploy(h, version) {\n  h.packages([version]);\n}\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].0, problems[0].1), (2, 11));
        assert!(problems[0].2.contains("`h.packages`"), "{problems:?}");
        // A string parameter used as a string is fine.
        assert_eq!(found("fn plan(version) {\n  log(version.len());\n}\n"), []);
    }

    #[test]
    fn host_used_by_a_goal_that_does_not_take_it() {
        let text = "fn first(host) {}\n\nfn plan(version) {\n  let x = 1;\n  host.run(`echo ${version}`);\n}\n";
        let problems = found(text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].0, problems[0].1), (5, 3));
        assert!(
            problems[0].2.contains("goal `plan` uses `host`"),
            "{problems:?}"
        );
    }

    #[test]
    fn right_goals_helpers_and_local_hosts_are_not_flagged() {
        let text = "fn deploy(host, version) {\n  host.run(version);\n  helper(version, host);\n}\nprivate fn helper(v, host) {\n  host.run(v);\n}\nfn plan() {\n  let host = controller();\n  host.run(\"x\");\n}\nfn each() {\n  for host in env().hosts { log(host); }\n  [1].map(|host| host + 1);\n}\n";
        assert_eq!(found(text), []);
        // In a `lib/` file public functions are helpers, not goals.
        assert_eq!(
            check_source("fn install(version, host) { host.run(version) }", false),
            []
        );
    }
}
