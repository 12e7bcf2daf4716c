//! The override rule: project over user over stdlib, by logical path, for scripts and templates.

use crate::harness::{write, Test};

const CONFIG: &str = "[project]\nname = \"layers\"\n";

#[test]
fn a_project_template_replaces_the_stdlib_one() {
    let test = Test::with_config(CONFIG);
    test.run(&["run", "system_report", "stdlib.txt"]).status(0);
    assert!(test.read("stdlib.txt").starts_with("host:   "));

    test.write(
        "templates/system/report.txt.hbs",
        "custom report for {{hostname}}\n",
    );
    test.run(&["run", "system_report", "project.txt"]).status(0);
    let host = test
        .read("stdlib.txt")
        .lines()
        .next()
        .unwrap_or_default()
        .replace("host:   ", "");
    assert_eq!(
        test.read("project.txt"),
        format!("custom report for {host}\n")
    );
    test.run(&["stdlib", "list"])
        .status(0)
        .stdout_has("templates/system/report.txt.hbs")
        .stdout_has("overridden by templates/system/report.txt.hbs");
}

#[test]
fn a_project_script_replaces_the_stdlib_file_and_list_says_so() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/services/system.rhai",
        "/// The project's own info.\nfn system_info(host) { log(\"mine\"); }\n",
    );
    test.run(&["list"])
        .status(0)
        .stdout_has("system_info")
        .stdout_has(
            "[project] The project's own info. (overrides <stdlib>/services/system.rhai (stdlib))",
        )
        .stdout_lacks("system_report");
    test.run(&["run", "system_info"])
        .status(0)
        .stdout_has("local | mine");
    test.run(&["stdlib", "show", "services/system.rhai"])
        .status(0)
        .stdout_has("log(\"mine\")")
        .stderr_has("deploy/services/system.rhai (project)");
}

#[test]
fn a_goal_in_another_file_overrides_the_stdlib_goal() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/info.rhai",
        "/// Mine.\nfn system_info(host) { log(\"other file\"); }\n",
    );
    test.run(&["list"])
        .status(0)
        .stdout_has("system_report")
        .stdout_has("[project] Mine.");
    test.run(&["run", "system_info"])
        .status(0)
        .stdout_has("local | other file");
}

#[test]
fn user_layer_sits_between_project_and_stdlib() {
    let test = Test::with_config(CONFIG);
    let user = test.user_dir();
    write(
        &user.join("deploy/tools.rhai"),
        "/// Personal.\nfn tools_hi(host) { log(\"from user\"); }\n",
    );
    write(
        &user.join("templates/system/report.txt.hbs"),
        "user {{cpus}}\n",
    );
    test.run(&["list"]).status(0).stdout_has("[user] Personal.");
    test.run(&["run", "system_report", "r.txt"]).status(0);
    assert!(test.read("r.txt").starts_with("user "));
    test.write(
        "deploy/tools.rhai",
        "/// Project.\nfn tools_hi(host) { log(\"from project\"); }\n",
    );
    test.run(&["run", "tools_hi"])
        .status(0)
        .stdout_has("local | from project");
}

#[test]
fn import_resolves_through_the_layers() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/lib/greet.rhai",
        "fn greeting(name) { `hi ${name}` }\n",
    );
    test.write(
        "deploy/app.rhai",
        "import \"greet\" as greet;\n/// Greets.\nfn app_greet(host) { log(greet::greeting(host.name)); }\n",
    );
    test.run(&["run", "app_greet"])
        .status(0)
        .stdout_has("local | hi local");
}

#[test]
fn eject_copies_the_stdlib_file_into_the_project() {
    let test = Test::with_config(CONFIG);
    test.run(&["stdlib", "eject", "templates/system/report.txt.hbs"])
        .status(0);
    assert!(test
        .read("templates/system/report.txt.hbs")
        .contains("{{kernel}}"));
    test.run(&["stdlib", "eject", "services/system.rhai"])
        .status(0);
    assert!(test
        .read("deploy/services/system.rhai")
        .contains("fn system_info"));
    test.run(&["stdlib", "eject", "services/system.rhai"])
        .status(2)
        .stderr_has("already exists")
        .stderr_has("--force");
    test.run(&["stdlib", "eject", "services/sytem.rhai"])
        .status(2)
        .stderr_has("did you mean `services/system.rhai`");
    test.run(&["list"])
        .status(0)
        .stdout_has("system_info")
        .stdout_has("[project]");
}

#[test]
fn list_shows_the_projects_goals_first_and_filters_by_name() {
    let test = Test::with_config(
        "[project]\nname = \"layers\"\n[apps.shop]\nrepos = [{ name = \"shop\", path = \"app\" }]\n",
    );
    test.write(
        "deploy/zz.rhai",
        "/// Mine.\nfn zz_deploy(host) {}\n/// Also mine.\nfn zz_check(host) {}\n",
    );
    write(
        &test.user_dir().join("deploy/personal.rhai"),
        "/// Personal.\nfn personal_deploy(host) {}\n",
    );
    let names = |out: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let all = test.run(&["list"]);
    all.status(0);
    let all = names(&all.stdout);
    // The project's own goals, then its app's, the user's, the stdlib's (`alert` sorts first).
    assert_eq!(all[..2], ["zz_check", "zz_deploy"], "{all:?}");
    let at = |name: &str| all.iter().position(|n| n == name).expect(name);
    assert!(at("shop_deploy") < at("personal_deploy"), "{all:?}");
    assert!(at("personal_deploy") < at("alert"), "{all:?}");

    let deploys = test.run(&["list", "DEPLOY"]);
    deploys.status(0);
    let deploys = names(&deploys.stdout);
    assert_eq!(
        deploys[..3],
        ["zz_deploy", "shop_deploy", "personal_deploy"]
    );
    assert!(deploys.iter().all(|n| n.contains("deploy")), "{deploys:?}");
    test.run(&["list", "nothing_has_this"])
        .status(0)
        .stderr_has("no goal's name contains `nothing_has_this`");
}
