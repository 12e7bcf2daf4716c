//! `weft lsp` speaks the language server protocol over stdio: the test is the client, with
//! its own Content-Length framing.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::Test;

/// A running `weft lsp` and the messages it sent that nobody asked for yet.
struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: mpsc::Receiver<Value>,
    next_id: i64,
}

fn read_message(reader: &mut BufReader<ChildStdout>) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl Client {
    fn start(test: &Test) -> Self {
        let mut child = test
            .command(&["lsp"])
            .env("XDG_CACHE_HOME", test.home().join("cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("weft lsp starts");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            while let Some(message) = read_message(&mut stdout) {
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            messages,
            next_id: 0,
        }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message that `accept` takes, skipping others.
    fn wait_for(&mut self, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
        loop {
            let message = self
                .messages
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("no {what} from weft lsp: {e}"));
            if accept(&message) {
                return message;
            }
        }
    }

    /// Sends a request and returns its result.
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let reply = self.wait_for(method, |m| m["id"] == json!(id));
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    fn open(&mut self, uri: &str, text: &str) -> Value {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "rhai", "version": 1, "text": text}}),
        );
        self.diagnostics(uri)
    }

    fn diagnostics(&mut self, uri: &str) -> Value {
        let uri = uri.to_string();
        self.wait_for("diagnostics", |m| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        })["params"]["diagnostics"]
            .clone()
    }

    fn at(uri: &str, line: u32, character: u32) -> Value {
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}})
    }

    fn stop(mut self) {
        let result = self.request("shutdown", Value::Null);
        assert_eq!(result, Value::Null);
        self.notify("exit", Value::Null);
        let status = self.child.wait().expect("weft lsp ends");
        assert!(status.success(), "weft lsp exited with {status}");
    }
}

const SCRIPT: &str = "/// Set up the web server.\nfn web_setup(host) {\n    host.packages([\"nginx\"]);\n    run_goal(\"nginx_setup\", #{ roles: [\"web\"] });\n}\n";

fn project() -> (Test, String, String) {
    let test = Test::with_config(
        "[project]\nname = \"site\"\n\n[env.prod]\nhosts = { web1 = \"root@10.0.0.5\" }\nvars = { port = 8080 }\n",
    );
    test.write("deploy/site.rhai", SCRIPT);
    test.write("templates/site/app.conf.hbs", "port {{port}}\n");
    let root = format!("file://{}", test.path().display());
    let uri = format!("{root}/deploy/site.rhai");
    (test, root, uri)
}

fn initialize(client: &mut Client, root: &str) -> Value {
    initialize_with(client, root, Value::Null)
}

fn initialize_with(client: &mut Client, root: &str, options: Value) -> Value {
    let result = client.request(
        "initialize",
        json!({"processId": null, "rootUri": root, "capabilities": {}, "initializationOptions": options}),
    );
    client.notify("initialized", json!({}));
    result
}

fn labels(items: &Value) -> Vec<String> {
    let items = items.get("items").unwrap_or(items);
    items
        .as_array()
        .expect("completion items")
        .iter()
        .filter_map(|i| i["label"].as_str().map(String::from))
        .collect()
}

#[test]
fn lsp_diagnoses_completes_hovers_and_finds_definitions() {
    let (test, root, uri) = project();
    let mut client = Client::start(&test);
    let init = initialize(&mut client, &root);
    let caps = &init["capabilities"];
    assert_eq!(caps["hoverProvider"], json!(true), "{init}");
    assert_eq!(caps["definitionProvider"], json!(true), "{init}");

    // A clean script has no diagnostics; a syntax error on line 3 (0-based 2) has one there.
    assert_eq!(client.open(&uri, SCRIPT), json!([]));
    let broken = SCRIPT.replace("host.packages([\"nginx\"]);", "host.packages([\"nginx\";");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": broken}]}),
    );
    let found = client.diagnostics(&uri);
    let found = found.as_array().expect("diagnostics");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["range"]["start"]["line"], json!(2), "{found:?}");
    assert_eq!(found[0]["code"], json!("weft::script::syntax"));

    // Back to the good text, then a line with `host.` to complete.
    let text = SCRIPT.replace(
        "    host.packages",
        "    host.\n    host.template(\"\n    host.vars.\n    host.packages",
    );
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": text}]}),
    );
    client.diagnostics(&uri);
    let members = labels(&client.request("textDocument/completion", Client::at(&uri, 2, 9)));
    for wanted in ["run", "file", "packages", "name"] {
        assert!(
            members.contains(&wanted.to_string()),
            "{wanted} not in {members:?}"
        );
    }
    assert!(!members.contains(&"run_goal".to_string()), "{members:?}");
    // Each with its signature and doc.
    let items = client.request("textDocument/completion", Client::at(&uri, 2, 9));
    let file = items
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["label"] == json!("file"))
        .expect("file");
    assert!(
        file["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("file(host: Host"),
        "{file}"
    );
    assert!(file["documentation"]["value"].is_string(), "{file}");
    let templates = labels(&client.request("textDocument/completion", Client::at(&uri, 3, 19)));
    assert!(
        templates.contains(&"site/app.conf.hbs".to_string()),
        "{templates:?}"
    );
    assert!(
        templates.iter().any(|t| t.starts_with("nginx/")),
        "{templates:?}"
    );
    // The default env is `local` here (no default_env), whose vars are the ones weft sets;
    // `port` is set in env `prod` only (see the test of vars below).
    let vars = labels(&client.request("textDocument/completion", Client::at(&uri, 4, 14)));
    assert_eq!(vars, ["env", "project"]);
    // Goal names inside `run_goal("`: the project's and the stdlib's.
    let goals = labels(&client.request("textDocument/completion", Client::at(&uri, 6, 15)));
    for wanted in ["nginx_setup", "web_setup"] {
        assert!(
            goals.contains(&wanted.to_string()),
            "{wanted} not in {goals:?}"
        );
    }

    // Hover on `packages` shows its reference; on a goal, its doc.
    let hover = client.request("textDocument/hover", Client::at(&uri, 5, 12));
    let value = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(value.contains("packages(host: Host"), "{hover}");
    let doc = test.run(&["doc", "packages"]).stdout;
    let first_doc_line = doc.lines().nth(2).unwrap_or_default().trim();
    assert!(
        value.contains(first_doc_line),
        "{first_doc_line:?} not in {value}"
    );
    let hover = client.request("textDocument/hover", Client::at(&uri, 6, 16));
    let value = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(value.contains("fn nginx_setup(host)"), "{hover}");

    // Definition of a stdlib goal: a read-only copy in the cache folder, at its `fn` line.
    let def = client.request("textDocument/definition", Client::at(&uri, 6, 16));
    let target = def["uri"].as_str().expect("definition uri").to_string();
    let cached = test.home().join("cache/weft/stdlib/services/nginx.rhai");
    assert_eq!(target, format!("file://{}", cached.display()), "{def}");
    let line = def["range"]["start"]["line"].as_u64().expect("line") as usize;
    let copy = std::fs::read_to_string(&cached).expect("stdlib copy");
    assert!(
        copy.lines()
            .nth(line)
            .unwrap_or_default()
            .starts_with("fn nginx_setup("),
        "line {line} of {copy}"
    );
    assert!(std::fs::metadata(&cached)
        .expect("copy")
        .permissions()
        .readonly());
    // The copy offers "eject to project": one edit that creates the project's file with its text.
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": target}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "context": {"diagnostics": []}}),
    );
    let changes = &actions[0]["edit"]["documentChanges"];
    let ejected = format!(
        "file://{}",
        test.path().join("deploy/services/nginx.rhai").display()
    );
    assert_eq!(changes[0]["kind"], json!("create"), "{actions}");
    assert_eq!(changes[0]["uri"], json!(ejected), "{actions}");
    assert_eq!(
        changes[1]["textDocument"]["uri"],
        json!(ejected),
        "{actions}"
    );
    assert_eq!(changes[1]["edits"][0]["newText"], json!(copy), "{actions}");
    assert!(actions[0]["title"]
        .as_str()
        .unwrap_or_default()
        .contains("deploy/services/nginx.rhai"));
    // Definition of a project goal: its file.
    let def = client.request("textDocument/definition", Client::at(&uri, 1, 5));
    assert_eq!(def["uri"], json!(uri));
    assert_eq!(def["range"]["start"]["line"], json!(1));

    // Strings: a template opens at the file that wins it, an import at its script.
    let text = "import \"lib/app\" as app;\n\nfn web_setup(host) {\n    host.template(\"nginx/site.conf.hbs\", \"/a\");\n    host.template(\"site/app.conf.hbs\", \"/b\");\n    let p = host.vars.port;\n    app::serves(host, \"x\");\n}\n";
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 4}, "contentChanges": [{"text": text}]}),
    );
    client.diagnostics(&uri);
    let cache = test.home().join("cache/weft/stdlib");
    let def = client.request("textDocument/definition", Client::at(&uri, 0, 10));
    assert_eq!(
        def["uri"],
        json!(format!("file://{}", cache.join("lib/app.rhai").display())),
        "{def}"
    );
    assert!(cache.join("lib/app.rhai").is_file());
    let def = client.request("textDocument/definition", Client::at(&uri, 3, 22));
    let stdlib_template = cache.join("templates/nginx/site.conf.hbs");
    assert_eq!(
        def["uri"],
        json!(format!("file://{}", stdlib_template.display())),
        "{def}"
    );
    assert!(stdlib_template.is_file());
    let def = client.request("textDocument/definition", Client::at(&uri, 4, 22));
    let project_template = test.path().join("templates/site/app.conf.hbs");
    assert_eq!(
        def["uri"],
        json!(format!("file://{}", project_template.display())),
        "{def}"
    );

    // A function of an imported module: its `fn` line in the module's file.
    let def = client.request("textDocument/definition", Client::at(&uri, 6, 12));
    assert_eq!(
        def["uri"],
        json!(format!("file://{}", cache.join("lib/app.rhai").display())),
        "{def}"
    );
    let line = def["range"]["start"]["line"].as_u64().expect("line") as usize;
    let module = std::fs::read_to_string(cache.join("lib/app.rhai")).expect("copy");
    assert!(
        module
            .lines()
            .nth(line)
            .unwrap_or_default()
            .starts_with("fn serves("),
        "line {line}: {def}"
    );

    let imports = labels(&client.request("textDocument/completion", Client::at(&uri, 0, 10)));
    for wanted in ["lib/app", "services/nginx", "site"] {
        assert!(
            imports.contains(&wanted.to_string()),
            "{wanted} not in {imports:?}"
        );
    }

    // A save reloads the project: a goal written since then completes.
    test.write(
        "deploy/more.rhai",
        "/// Added later.\nfn later_goal(host) {}\n",
    );
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri}}),
    );
    let goals = labels(&client.request("textDocument/completion", Client::at(&uri, 6, 0)));
    assert!(goals.contains(&"later_goal".to_string()), "{goals:?}");

    // Hover on a template says where it comes from; on a var, where weft.toml sets it.
    let hover = client.request("textDocument/hover", Client::at(&uri, 3, 22));
    let value = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        value.contains("from `<stdlib>/templates/nginx/site.conf.hbs` (stdlib)"),
        "{hover}"
    );
    let hover = client.request("textDocument/hover", Client::at(&uri, 4, 22));
    let value = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        value.contains("from `templates/site/app.conf.hbs` (project)"),
        "{hover}"
    );
    let hover = client.request("textDocument/hover", Client::at(&uri, 5, 24));
    let value = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        value.contains("var `port`") && value.contains("[env.prod.vars]"),
        "{hover}"
    );

    // Workspace symbols: the goals of every layer.
    let found = client.request("workspace/symbol", json!({"query": "NGINX_"}));
    let names: Vec<&str> = found
        .as_array()
        .expect("symbols")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"nginx_setup") && names.iter().all(|n| n.contains("nginx_")),
        "{names:?}"
    );
    let found = client.request("workspace/symbol", json!({"query": "web_setup"}));
    assert_eq!(
        found[0]["location"]["uri"],
        json!(format!("{root}/deploy/site.rhai")),
        "{found}"
    );

    // Symbols: the goals of the file.
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(symbols[0]["name"], json!("web_setup"), "{symbols}");
    assert_eq!(symbols[0]["range"]["start"]["line"], json!(2));

    client.stop();
}

#[test]
fn lsp_reports_weft_toml_errors_with_ranges() {
    let (test, root, _) = project();
    let mut client = Client::start(&test);
    initialize(&mut client, &root);
    let uri = format!("{root}/weft.toml");
    let text = "[project]\nname = \"site\"\nbogus = 1\n";
    let found = client.open(&uri, text);
    let found = found.as_array().expect("diagnostics");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["range"]["start"]["line"], json!(2), "{found:?}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("bogus"),
        "{found:?}"
    );
    // The message is the one the command line prints for the same file.
    test.write("weft.toml", text);
    let first = found[0]["message"].as_str().unwrap_or_default();
    let first = first.lines().next().unwrap_or_default();
    test.run(&["list"]).status(2).stderr_has(first);
    // An option a function does not take, with the closest one; option keys complete.
    let script = format!("{root}/deploy/files.rhai");
    let text = "fn files(host) {\n    host.file(\"/a\", #{ modee: \"0644\" });\n    host.file(\"/b\", #{  });\n}\n";
    let found = client.open(&script, text);
    let found = found.as_array().expect("diagnostics");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0]["range"]["start"],
        json!({"line": 1, "character": 23}),
        "{found:?}"
    );
    assert_eq!(found[0]["code"], json!("weft::script::option"));
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did you mean `mode`?"),
        "{found:?}"
    );
    let keys = labels(&client.request("textDocument/completion", Client::at(&script, 2, 24)));
    assert_eq!(
        keys,
        [
            "content",
            "mode",
            "owner",
            "group",
            "sensitive",
            "validate",
            "always"
        ]
    );
    // A host function weft does not have: a warning with the closest names.
    let typo = text.replace("host.file(\"/b\"", "host.fiel(\"/b\"");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": script, "version": 2}, "contentChanges": [{"text": typo}]}),
    );
    let found = client.diagnostics(&script);
    let warning = found
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == json!("weft::script::unknown_function"))
        .unwrap_or_else(|| panic!("no unknown function in {found}"));
    assert_eq!(warning["severity"], json!(2), "{warning}");
    assert_eq!(
        warning["range"]["start"],
        json!({"line": 2, "character": 9}),
        "{warning}"
    );
    assert!(
        warning["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`file`"),
        "{warning}"
    );
    // A request the server does not know gets an error, and the server keeps going.
    client.send(json!({"jsonrpc": "2.0", "id": 99, "method": "weft/nothing", "params": {}}));
    let reply = client.wait_for("error", |m| m["id"] == json!(99));
    assert!(reply["error"].is_object(), "{reply}");
    // Garbage parameters are an error, not a crash.
    client.send(
        json!({"jsonrpc": "2.0", "id": 100, "method": "textDocument/hover", "params": {"x": 1}}),
    );
    let reply = client.wait_for("error", |m| m["id"] == json!(100));
    assert!(reply["error"].is_object(), "{reply}");
    client.stop();
}

#[test]
fn lsp_completes_the_merged_vars_of_the_current_env() {
    let test = Test::with_config(
        r#"[project]
name = "site"
default_env = "prod"

[vars]
port = 80
www = "/srv"

[env.prod]
hosts = { web1 = "root@10.0.0.5", web2 = { address = "root@10.0.0.6", vars = { port = 8081 } } }
roles = { db = { hosts = ["web2"], vars = { db = { name = "site", user = "app" } } } }
vars = { port = 8080, tls = true }

[env.stage]
hosts = { s1 = "root@10.0.0.9" }
vars = { stage_only = 1 }
"#,
    );
    let text = "fn web(host) {\n    let a = host.vars.;\n    let b = host.vars.db.;\n    let c = host.vars.port;\n}\n";
    test.write("deploy/site.rhai", text);
    let root = format!("file://{}", test.path().display());
    let uri = format!("{root}/deploy/site.rhai");

    // Without a setting: the project's default_env, `prod`, merged per host.
    let mut client = Client::start(&test);
    initialize(&mut client, &root);
    client.open(&uri, text);
    let items = client.request("textDocument/completion", Client::at(&uri, 1, 22));
    assert_eq!(
        labels(&items),
        ["db", "env", "port", "project", "tls", "www"],
        "{items}"
    );
    let item = |name: &str| {
        items
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["label"] == json!(name))
            .cloned()
            .expect(name)
    };
    // Host vars win over env vars over project vars; tables merge key by key.
    assert_eq!(item("port")["detail"], json!("differs by host"));
    let doc = item("port")["documentation"]["value"].to_string();
    assert!(
        doc.contains("web1: `8080`") && doc.contains("web2: `8081`"),
        "{doc}"
    );
    assert_eq!(item("tls")["detail"], json!("= true"));
    assert_eq!(item("env")["detail"], json!("= \"prod\""));
    // `db` is a role's var: on web2 only.
    assert_eq!(item("db")["detail"], json!("differs by host"));
    let keys = labels(&client.request("textDocument/completion", Client::at(&uri, 2, 25)));
    assert_eq!(keys, ["name", "user"]);
    let hover = client.request("textDocument/hover", Client::at(&uri, 3, 24));
    let value = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        value.contains("[env.prod.vars]")
            && value.contains("in env `prod`:")
            && value.contains("- web2: `8081`"),
        "{hover}"
    );
    client.stop();

    // A client's setting names another env.
    let mut client = Client::start(&test);
    initialize_with(&mut client, &root, json!({"env": "stage"}));
    client.open(&uri, text);
    let vars = labels(&client.request("textDocument/completion", Client::at(&uri, 1, 22)));
    assert_eq!(vars, ["env", "port", "project", "stage_only", "www"]);
    // Settings that change while it runs (VS Code sends its `weft` section): back to the
    // default env when the env is cleared.
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"weft": {"env": ""}}}),
    );
    let vars = labels(&client.request("textDocument/completion", Client::at(&uri, 1, 22)));
    assert!(vars.contains(&"tls".to_string()), "{vars:?}");
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"env": "stage"}}),
    );
    let vars = labels(&client.request("textDocument/completion", Client::at(&uri, 1, 22)));
    assert!(vars.contains(&"stage_only".to_string()), "{vars:?}");
    client.stop();
}

#[test]
fn lsp_warns_of_goals_with_a_wrong_host_parameter() {
    let (test, root, _) = project();
    let mut client = Client::start(&test);
    initialize(&mut client, &root);
    let uri = format!("{root}/deploy/wrong.rhai");
    let text = "/// Deploys.\nfn deploy(version, host) {\n    host.run(version);\n}\n\nfn plan() {\n    host.run(\"x\");\n}\n";
    let found = client.open(&uri, text);
    let found = found.as_array().expect("diagnostics");
    assert_eq!(found.len(), 2, "{found:?}");
    for d in found {
        assert_eq!(d["code"], json!("weft::script::host_param"), "{d}");
        assert_eq!(d["severity"], json!(2), "{d}");
    }
    assert_eq!(
        found[0]["range"],
        json!({"start": {"line": 1, "character": 19}, "end": {"line": 1, "character": 23}}),
        "{found:?}"
    );
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("parameter 2 of goal `deploy`"),
        "{found:?}"
    );
    assert_eq!(
        found[1]["range"]["start"],
        json!({"line": 6, "character": 4}),
        "{found:?}"
    );
    // Fixed: no warnings left.
    let fixed = text
        .replace("deploy(version, host)", "deploy(host, version)")
        .replace("fn plan()", "fn plan(host)");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(client.diagnostics(&uri), json!([]));
    // In `lib/`, public functions are helpers, not goals: any parameters go.
    let lib = format!("{root}/deploy/lib/helpers.rhai");
    assert_eq!(
        client.open(&lib, text.replace("fn plan()", "fn plan(host)").as_str()),
        json!([])
    );
    client.stop();
}

/// A real client: headless Neovim (Debian's package, which `scripts/test.sh` installs) with
/// its built-in LSP client reads back diagnostics and a completion list.
#[test]
fn neovim_shows_diagnostics_and_completions() {
    let (test, _, _) = project();
    test.write(
        "deploy/site.rhai",
        "fn web(host) {\n    host.packages([\"nginx\";\n}\n",
    );
    test.write("nvim-lsp.lua", include_str!("nvim-lsp.lua"));
    let out = test.path().join("nvim-out.txt");
    let mut child = std::process::Command::new("nvim")
        .args(["--headless", "--clean", "-n", "-c", "luafile nvim-lsp.lua"])
        .current_dir(test.path())
        .env("HOME", test.home())
        .env("XDG_CACHE_HOME", test.home().join("cache"))
        .env("XDG_CONFIG_HOME", test.home().join("config"))
        .env("WEFT_BIN", env!("CARGO_BIN_EXE_weft"))
        .env("WEFT_OUT", &out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("nvim runs (scripts/test.sh installs Debian's neovim)");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("nvim status").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("nvim did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = std::fs::read_to_string(&out).expect("nvim wrote its findings");
    let lines: Vec<&str> = lines.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("diagnostic 1 ") && l.contains("array")),
        "{lines:?}"
    );
    for wanted in ["completion run", "completion file", "completion packages"] {
        assert!(lines.contains(&wanted), "{wanted} not in {lines:?}");
    }
}

/// A goal written in an open buffer completes and hovers with its doc before the file is
/// saved, and the goals it no longer defines are gone from completion.
#[test]
fn lsp_knows_the_goals_of_unsaved_text() {
    let (test, root, uri) = project();
    let mut client = Client::start(&test);
    initialize(&mut client, &root);
    assert_eq!(client.open(&uri, SCRIPT), json!([]));
    let text =
        "/// Restart the site, unsaved.\nfn web_restart(host) {\n    run_goal(\"web_\");\n}\n";
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": text}]}),
    );
    assert_eq!(client.diagnostics(&uri), json!([]));
    let goals = labels(&client.request("textDocument/completion", Client::at(&uri, 2, 18)));
    assert!(goals.contains(&"web_restart".to_string()), "{goals:?}");
    assert!(!goals.contains(&"web_setup".to_string()), "{goals:?}");
    let hover = client.request("textDocument/hover", Client::at(&uri, 1, 5));
    let value = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(value.contains("Restart the site, unsaved."), "{hover}");
    assert_eq!(
        std::fs::read_to_string(test.path().join("deploy/site.rhai")).expect("read"),
        SCRIPT
    );
    client.stop();
}
