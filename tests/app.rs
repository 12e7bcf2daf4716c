//! The generic `app` service: atomic switches, rollback to good builds only, health checks,
//! the deploy lock and pruning.

use crate::harness::Test;

fn project() -> (Test, std::path::PathBuf) {
    let test = Test::new();
    let www = test.path().join("www");
    test.write(
        "weft.toml",
        &format!(
            "[project]\nname = \"shop\"\n[vars]\napp_root = \"{}\"\napp_source = \"site\"\napp_keep = 2\napp_health = \"grep -qx ok health.txt\"\n",
            www.display()
        ),
    );
    test.write("site/health.txt", "ok\n");
    (test, www.join("shop"))
}

fn serving(base: &std::path::Path) -> String {
    std::fs::read_to_string(base.join("current/index.html")).unwrap_or_default()
}

#[test]
fn deploys_switch_atomically_and_roll_back_to_good_builds_only() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    test.run(&["run", "app_deploy", "v1"])
        .status(0)
        .stdout_has("activated");
    assert_eq!(serving(&base), "v1\n");
    test.write("site/index.html", "v2\n");
    test.run(&["run", "app_deploy", "v2"]).status(0);
    assert_eq!(serving(&base), "v2\n");
    test.run(&["run", "app_rollback"])
        .status(0)
        .stdout_has("rolled back");
    assert_eq!(serving(&base), "v1\n");

    // A build that fails its health check is never activated, and never rolled back to.
    test.write("site/index.html", "v3\n")
        .write("site/health.txt", "failing\n");
    test.run(&["run", "app_deploy", "v3"])
        .status(1)
        .stdout_has("the health check of");
    assert_eq!(serving(&base), "v1\n");
    test.run(&["run", "app_status"])
        .status(0)
        .stdout_has("v3 (bad)")
        .stdout_has("* ");
    test.run(&["run", "app_rollback"]).status(0);
    assert_eq!(serving(&base), "v2\n");

    // Prune keeps `app_keep` builds and the active one.
    test.write("site/health.txt", "ok\n")
        .write("site/index.html", "v4\n");
    test.run(&["run", "app_deploy", "v4"]).status(0);
    let builds = std::fs::read_dir(base.join("builds"))
        .expect("builds")
        .count();
    assert!(builds <= 2, "{builds} builds kept");
    assert_eq!(serving(&base), "v4\n");
}

#[test]
fn the_deploy_lock_stops_a_second_deploy_until_broken() {
    let (test, base) = project();
    test.write("site/index.html", "v1\n");
    std::fs::create_dir_all(base.join(".lock")).expect("lock");
    std::fs::write(
        base.join(".lock/owner"),
        "alice@ci 2026-11-22T10:00:00Z app_deploy\n",
    )
    .expect("owner");
    test.run(&["run", "app_deploy", "v1"])
        .status(1)
        .stdout_has("is locked by another deploy (alice@ci");
    assert!(!base.join("current").exists());
    test.run(&["run", "app_unlock"])
        .status(0)
        .stdout_has("breaking the lock of alice@ci");
    test.run(&["run", "app_deploy", "v1"]).status(0);
    assert_eq!(serving(&base), "v1\n");
    assert!(!base.join(".lock").exists(), "the lock outlived the deploy");
}
