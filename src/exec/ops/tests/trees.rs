//! `touch`, `rename`, `copy_tree` and the facts of folders (`tree_sum`, `files`, `realpath`):
//! the host's answers in, the commands and what is reported out, with `--check`.

use super::{changed, refused, unchanged};
use crate::exec::ops::trees;
use crate::exec::test_host::{assert_ran_in, Flags, TestHost};
use crate::transport::fake::FakeTransport;

/// A case of an operation: its name, what the host answers, `--check`, the parts of the
/// commands expected, and `Some(changed)` or `None` for a refusal.
type OpCase<A> = (&'static str, A, bool, &'static [&'static str], Option<bool>);

/// What a fact is expected to give: a value, or an error holding the text.
type Expected<T> = Result<T, &'static str>;

fn host(fake: FakeTransport, check: bool) -> TestHost {
    TestHost::with(
        fake,
        Flags {
            check,
            ..Flags::default()
        },
    )
}

#[test]
fn touch_table() {
    // (name, --check, expected command parts)
    let cases: [(&str, bool, &[&str]); 2] = [
        (
            "touched inside a private folder beside, never through a link",
            false,
            &["weft_enter /srv/app/builds && weft_at=$PWD && weft_stage=$(mktemp -d"],
        ),
        ("under --check nothing runs", true, &[]),
    ];
    for (name, check, expected) in cases {
        let h = host(FakeTransport::new(), check);
        let result = trees::touch(&h.session, "/srv/app/builds/v2");
        assert_ran_in(name, &h, expected);
        changed(&h, result, "touch /srv/app/builds/v2");
        if !check {
            let command = &h.commands()[0];
            assert!(
                command.contains("touch -c -h -- ../v2") && command.contains("ln -T -- new ../v2"),
                "{name}: {command}"
            );
        }
    }
}

#[test]
fn touch_refuses_a_path_that_names_no_file() {
    let h = host(FakeTransport::new(), false);
    let result = trees::touch(&h.session, "/srv/..");
    refused(&h, result, "names no file or folder");
    assert!(h.commands().is_empty());
}

const RENAME_PROBE: &str =
    "if [ -e /srv/b/.v2.part ] || [ -L /srv/b/.v2.part ]; then echo from; fi";

#[test]
fn rename_table() {
    // (name, what the probe sees, --check, expected command parts, changed)
    let cases: [OpCase<&str>; 5] = [
        (
            "from there: renamed by name inside its folder",
            "from\nto\n",
            false,
            &[
                RENAME_PROBE,
                "weft_enter /srv/b && exec mv -f -T -- .v2.part v2",
            ],
            Some(true),
        ),
        (
            "from there, under --check",
            "from\n",
            true,
            &[RENAME_PROBE],
            Some(true),
        ),
        (
            "done already: from gone, to there",
            "to\n",
            false,
            &[RENAME_PROBE],
            Some(false),
        ),
        ("neither there", "", false, &[RENAME_PROBE], None),
        (
            "neither there, under --check: what makes from did not run",
            "",
            true,
            &[RENAME_PROBE],
            Some(true),
        ),
    ];
    for (name, seen, check, expected, change) in cases {
        let h = host(FakeTransport::new().on(RENAME_PROBE, 0, seen), check);
        let result = trees::rename(&h.session, "/srv/b/.v2.part", "/srv/b/v2");
        assert_ran_in(name, &h, expected);
        let step = "rename /srv/b/.v2.part -> /srv/b/v2";
        match change {
            Some(true) => changed(&h, result, step),
            Some(false) => unchanged(&h, result, step),
            None => refused(&h, result, "nothing is at /srv/b/.v2.part or /srv/b/v2"),
        }
    }
}

#[test]
fn rename_stays_in_one_folder() {
    let h = host(FakeTransport::new(), false);
    let result = trees::rename(&h.session, "/tmp/x", "/etc/x");
    refused(&h, result, "in different folders");
    assert!(h.commands().is_empty(), "{:?}", h.commands());
}

/// The compare probe of `copy_tree`: `tar --compare` in the target.
const COMPARE: &str = "tar -df -";

#[test]
fn copy_tree_table() {
    // (name, the compare's exit code, --check, expected command parts, changed)
    let cases: [OpCase<i32>; 5] = [
        ("alike already", 0, false, &[COMPARE], Some(false)),
        (
            "differs: copied from inside one folder into the other",
            1,
            false,
            &[COMPARE, "exec tar --null --exclude=.git"],
            Some(true),
        ),
        ("differs, under --check", 1, true, &[COMPARE], Some(true)),
        (
            "the target is missing, under --check",
            2,
            true,
            &[COMPARE],
            Some(true),
        ),
        ("the source is no folder", 3, false, &[COMPARE], None),
    ];
    for (name, code, check, expected, change) in cases {
        let h = host(FakeTransport::new().on(COMPARE, code, ""), check);
        let exclude = [".git".to_string()];
        let result = trees::copy_tree(&h.session, "/srv/repo", "/srv/stage/src", &exclude);
        assert_ran_in(name, &h, expected);
        let step = "copy_tree /srv/repo -> /srv/stage/src";
        match change {
            Some(true) => changed(&h, result, step),
            Some(false) => unchanged(&h, result, step),
            None => refused(&h, result, "/srv/repo is not a folder"),
        }
        if change == Some(true) && !check {
            let copy = &h.commands()[1];
            // Read from `from` entered name by name; written into `to`, made when missing.
            assert!(copy.contains("weft_enter /srv/repo &&"), "{copy}");
            assert!(
                copy.contains(
                    "exec tar --no-same-owner --no-same-permissions --no-overwrite-dir -xf -"
                ),
                "{copy}"
            );
        }
    }
}

/// A target holding a folder another user owns or can write is refused before anything is
/// copied, with the folder named; the copy itself checks again.
#[test]
fn copy_tree_refuses_a_target_another_user_can_change() {
    for (seen, named) in [
        ("./css\n", "/srv/stage/src/css is owned or writable"),
        (".\n", "/srv/stage/src is owned or writable"),
    ] {
        let h = host(FakeTransport::new().on(COMPARE, 4, seen), false);
        let result = trees::copy_tree(&h.session, "/srv/repo", "/srv/stage/src", &[]);
        refused(&h, result, named);
        assert_eq!(h.commands().len(), 1, "{:?}", h.commands());
        assert!(
            h.commands()[0].contains("-perm -0002"),
            "{:?}",
            h.commands()
        );
    }
    let fake = FakeTransport::new().on(COMPARE, 1, "");
    let h = host(fake, false);
    trees::copy_tree(&h.session, "/srv/repo", "/srv/copy", &[]).expect("copied");
    let copy = &h.commands()[1];
    assert!(
        copy.contains("-perm -0002") && copy.contains("--owner=\"$(id -un):$(id -u)\""),
        "{copy}"
    );
}

#[test]
fn copy_tree_fails_when_the_copy_fails() {
    let fake = FakeTransport::new()
        .on(COMPARE, 1, "")
        .on("--no-overwrite-dir -xf", 1, "");
    let h = host(fake, false);
    let result = trees::copy_tree(&h.session, "/srv/repo", "/srv/copy", &[]);
    assert!(
        result.is_err(),
        "a failed copy must fail the operation: {result:?}"
    );
    assert!(h.changes().is_empty());
}

const SUM: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn tree_sum_table() {
    // (name, exit code, printed, expected)
    let printed = format!("find 0\nxargs 0\n{SUM}  -\n");
    let find_failed = format!("find 1\nxargs 0\n{SUM}  -\n");
    let xargs_failed = format!("{SUM}  -\nfind 0\nxargs 124\n");
    let cases: [(&str, i32, &str, Expected<Option<&str>>); 6] = [
        ("a folder", 0, &printed, Ok(Some(SUM))),
        // A partial sum is no sum.
        ("find failed", 0, &find_failed, Err("find exited 1")),
        ("xargs timed out", 0, &xargs_failed, Err("xargs exited 124")),
        ("no folder", 3, "", Ok(None)),
        ("unreadable", 1, "", Err("cannot read /srv/src")),
        (
            "no sum printed",
            0,
            "oops\n",
            Err("sha256sum printed no sum"),
        ),
    ];
    for (name, code, out, expected) in cases {
        // Read under --check too.
        let h = host(FakeTransport::new().on("sha256sum", code, out), true);
        let spec = trees::SumSpec {
            exclude: vec![".git".into(), ".weft".into()],
            ..Default::default()
        };
        let result = trees::tree_sum(&h.session, "/srv/src", &spec);
        match (result, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want, "{name}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
        let command = &h.commands()[0];
        assert!(
            command.contains(
                "timeout 600 find . \\( -name .git -o -name .weft \\) -prune -o -type f -print0;"
            ),
            "{name}: {command}"
        );
    }
}

/// The sums run by a real shell on a real tree equal what the stdlib's pipelines gave before
/// tree_sum (so build and image ids stay): a build's files with only the top `.git` left out,
/// an image's with the header and `.git`/`.weft` left out at any depth.
#[test]
fn tree_sum_equals_the_old_pipelines() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("src");
    for (file, text) in [
        ("a.txt", "alpha\n"),
        (".git/HEAD", "ref\n"),
        ("vendor/lib/.git/HEAD", "nested\n"),
        ("vendor/lib/x.py", "x = 1\n"),
        (".weft/state", "s\n"),
    ] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh");
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let sum_of = |spec: &trees::SumSpec| {
        let h = host(FakeTransport::new().on("sha256sum", 3, ""), false);
        let _ = trees::tree_sum(&h.session, &root.display().to_string(), spec);
        let mut printed = sh(&h.commands()[0]);
        printed.retain(|c| c != '\n');
        printed.replace("find 0", "").replace("xargs 0", "")
    };
    let r = crate::shell::quote(&root.display().to_string());
    let build = trees::SumSpec {
        exclude_top: vec![".git".into()],
        ..Default::default()
    };
    let old_build = sh(&format!(
        "cd {r} && find . -path ./.git -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum"
    ));
    assert_eq!(sum_of(&build), old_build.trim_end());
    let image = trees::SumSpec {
        exclude: vec![".git".into(), ".weft".into()],
        header: "weft image 1\nfile Containerfile\n".into(),
        ..Default::default()
    };
    let old_image = sh(&format!(
        "cd {r} && {{ printf 'weft image 1\\nfile %s\\n' Containerfile; find . \\( -name .git -o -name .weft \\) -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; }} | sha256sum"
    ));
    assert_eq!(sum_of(&image), old_image.trim_end());
    assert_ne!(
        sum_of(&build),
        sum_of(&trees::SumSpec {
            exclude: vec![".git".into()],
            ..Default::default()
        }),
        "the nested .git is summed only with exclude_top"
    );
}

#[test]
fn files_are_relative_and_sorted_and_none_without_a_folder() {
    let h = host(
        FakeTransport::new().on("find . -type f -print0", 0, "./b/x\0./a\0./c d\0"),
        true,
    );
    let names = trees::files(&h.session, "/srv/files/site", &[]).expect("files");
    assert_eq!(names, ["a", "b/x", "c d"]);
    assert_eq!(h.commands().len(), 1);

    let h = host(FakeTransport::new(), true);
    assert!(trees::files(&h.session, "/nowhere", &[])
        .expect("files")
        .is_empty());
}

#[test]
fn realpath_table() {
    let cases = [
        (
            0,
            "/srv/app/builds/v2/venv\n",
            Some("/srv/app/builds/v2/venv"),
        ),
        (1, "", None),
    ];
    for (code, printed, expected) in cases {
        let h = host(FakeTransport::new().on("realpath", code, printed), true);
        let got = trees::realpath(&h.session, "/srv/app/current/venv").expect("realpath");
        assert_eq!(got.as_deref(), expected);
        assert_eq!(h.commands(), ["exec realpath -e -- /srv/app/current/venv"]);
    }
}

#[test]
fn a_touch_whose_link_fails_for_another_reason_than_a_name_taken_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let sh = |path: &std::path::Path| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(trees::touch_command(&path.display().to_string()))
            .output()
            .expect("sh")
    };
    // Made empty, nothing else left in the folder.
    let made = dir.path().join("stamp");
    assert!(sh(&made).status.success());
    assert_eq!(std::fs::read(&made).expect("made"), b"");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    // A name no file system takes: before, the fallback `touch -c` of nothing succeeded.
    let out = sh(&dir.path().join("n".repeat(300)));
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name too long"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
}
