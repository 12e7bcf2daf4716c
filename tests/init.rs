//! `weft init` and the skeleton it writes.

use crate::harness::Test;

#[test]
fn init_creates_a_project_whose_goals_list_and_run() {
    let test = Test::new();
    test.run(&["init", "demo"])
        .status(0)
        .stdout_has("created demo/weft.toml");
    let demo = test.path().join("demo");
    let list = test.run_in(&demo, &["list"]);
    list.status(0)
        .stdout_has("hello_deploy <version>")
        .stdout_has("[project] Deploy the hello page")
        .stdout_lacks("anon$")
        .stdout_has("system_info");
    test.run_in(&demo, &["run", "hello_deploy", "v1", "-e", "local"])
        .status(0)
        .stdout_has("changed: file www/index.html");
    let page = std::fs::read_to_string(demo.join("www/index.html")).expect("page");
    assert!(page.contains("<h1>hello from local</h1>"), "{page}");
    assert!(page.contains("version v1"), "{page}");
    assert!(page.contains("<title>demo</title>"), "{page}");
}

#[test]
fn init_refuses_an_existing_project_and_unknown_skeletons() {
    let test = Test::new();
    test.run(&["init"]).status(0);
    test.run(&["init"]).status(2).stderr_has("already exists");
    test.run(&["init", "x", "--skeleton", "defualt"])
        .status(2)
        .stderr_has("did you mean `default`?");
}
