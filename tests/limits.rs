//! The limits of a goal's data: values nested without end, and values that pass the memory
//! budget, each end their goal with an error at the script's line, never the process.

use crate::harness::Test;

const CONFIG: &str = "[project]\nname = \"limits\"\n";

#[test]
fn a_value_nested_without_end_ends_its_goal_at_the_line() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/nest.rhai",
        "/// Nests an array in itself.\nfn nest_array() {\n    let a = [];\n    for i in 0..100000 { a = [a]; }\n    log(\"all nested\");\n}\n\n\
         /// Nests a map in itself.\nfn nest_map() {\n    let m = #{};\n    for i in 0..100000 {\n        m = #{ inner: m };\n    }\n}\n\n\
         /// Nests a value and returns it.\nfn nest_returned() {\n    nested(40)\n}\n\n\
         private fn nested(n) {\n    if n == 0 { [] } else { [[[[[[[[nested(n - 1)]]]]]]]] }\n}\n",
    );
    test.run(&["run", "nest_array"])
        .status(1)
        .stderr_has("`a` nests arrays and maps deeper than 256 levels")
        .stderr_has("deploy/nest.rhai:4")
        .stderr_has("overflow")
        .stdout_has("summary: 0 ok, 0 changed, 1 failed")
        .stdout_lacks("all nested");
    test.run(&["run", "nest_map"])
        .status(1)
        .stderr_has("`m` nests arrays and maps deeper than 256 levels")
        .stderr_has("deploy/nest.rhai:12")
        .stdout_has("1 failed");
    // 320 levels built inside calls, and returned.
    test.run(&["run", "nest_returned"])
        .status(1)
        .stderr_has("the value it returns nests arrays and maps deeper than 256 levels")
        .stdout_has("1 failed");
}

#[test]
fn a_map_of_large_strings_ends_its_goal_at_the_memory_budget() {
    let test = Test::with_config(CONFIG);
    test.write(
        "deploy/grow.rhai",
        "/// Keeps a thousand strings of 60 MB in a map.\nfn grow_map() {\n    let s = \"\";\n    s.pad(60000000, \"x\");\n    let m = #{};\n    for i in 0..1000 {\n        m[`k${i}`] = s + i;\n    }\n    log(\"kept them all\");\n}\n",
    );
    let out = test.run(&["run", "grow_map"]);
    // Ended by weft itself, not killed by the kernel or a signal.
    out.status(1)
        .stderr_has("passed its memory budget of 512 MiB")
        .stderr_has("deploy/grow.rhai:7")
        .stdout_has("1 failed")
        .stdout_lacks("kept them all");
}

#[test]
fn values_held_down_a_chain_of_calls_count_together() {
    let test = Test::with_config(CONFIG);
    // Each call holds 180 MB of its own, under the budget; four of them hold 720 MB.
    test.write(
        "deploy/deep.rhai",
        "/// Holds strings at each level of a recursion.\nfn hold_down() {\n    hold(4)\n}\n\n\
         private fn hold(n) {\n    let s = \"\";\n    s.pad(60000000, \"x\");\n    let m = #{};\n    m[\"a\"] = s + 1;\n    m[\"b\"] = s + 2;\n    m[\"c\"] = s + 3;\n    if n > 0 { hold(n - 1); }\n    log(\"held\");\n}\n",
    );
    test.run(&["run", "hold_down"])
        .status(1)
        .stderr_has("passed its memory budget of 512 MiB")
        .stderr_has("deploy/deep.rhai:")
        .stdout_has("1 failed")
        .stdout_lacks("held");
}
