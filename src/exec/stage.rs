//! A private folder on a host, beside a path weft replaces as root (issue 29): `mktemp -d`
//! makes it under a random name, owned by the login (or become) user with mode 0700, in the
//! target's own folder so that a rename puts what was staged in place. Whoever owns that folder
//! can rename the private one and put a link under its name, so every command that uses it
//! enters it first and checks that it is still the folder weft made (device, inode, owner,
//! mode), then works on names inside it, which nobody else can create or swap.

use super::step::{Commands, HostError, RunOptions};
pub use crate::shell::enter;
use crate::shell::quote;

/// A private folder made on a host.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its path, with no link in it.
    dir: String,
    /// `device:inode:owner` as `stat -c %d:%i:%u` printed it once made.
    id: String,
}

/// The folder a path is in, as a shell word: `/` for `/x`, `.` for a bare name.
pub fn folder_of(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => ".",
    }
}

/// The shell lines that make a private folder in `folder`, entered by `weft_enter` (no link
/// another user owns is followed on the way), and enter it, checking that it is the one made,
/// inside the folder entered: a link or a folder of someone else's swapped in between `mktemp`
/// and `cd` fails. A set-group-id bit it took from a folder such as Debian's /etc/redis is
/// cleared (through `.`, the folder entered). The folder's path is then in `$weft_stage`, by the
/// name `mktemp` gave it (if the folder's owner renamed it meanwhile, the next command that
/// enters it by that name fails its check rather than following the rename), and `..` is the
/// folder it was made in.
/// Three processes (`mktemp` and two `stat`s, a fourth for a set-group-id bit): every small
/// file weft writes pays for them on the host (issue 33). The first `stat` notes the folder
/// entered and the one made (a link swapped in shows as the link); after `cd -P` the second
/// must find the same two, the one made owned by this user (`-O`, a builtin).
fn make(folder: &str) -> String {
    format!(
        "{enter} && weft_at=$PWD && \
         weft_stage=$(mktemp -d ./.weft-stage.XXXXXXXXXX) && \
         set -- $(stat -c %d:%i -- . \"$weft_stage\") && [ $# = 2 ] && \
         cd -P -- \"$weft_stage\" && [ -O . ] && \
         set -- \"$1\" \"$2\" $(stat -c %d:%i:%a -- .. .) && [ $# = 4 ] && \
         [ \"${{3%:*}}\" = \"$1\" ] && [ \"${{4%:*}}\" = \"$2\" ] && \
         {{ [ \"${{4##*:}}\" = 700 ] || {{ chmod u=rwx,go=,-s . && [ \"$(stat -c %a .)\" = 700 ]; }}; }} && \
         weft_stage=\"${{weft_at%/}}/${{weft_stage#./}}\"",
        enter = enter(folder, false)
    )
}

/// `make`, or an exit that says why there is no private folder.
fn make_or_exit(folder: &str) -> String {
    format!(
        "{make} || {{ echo 'weft: cannot make a private folder in '{f}', or it was replaced \
         while weft entered it' >&2; exit 1; }}",
        make = make(folder),
        f = quote(folder),
    )
}

/// The last name of `path` (`dump.rdb` of `/var/lib/redis/dump.rdb`).
pub fn name_of(path: &str) -> &str {
    let path = path.trim_end_matches('/');
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// `path` as a shell word for a command that runs in a private folder made beside it
/// (`in_one_command`, `Stage::command`): `../NAME`, taken from the folder the private one is
/// in, so no name on the way to it is looked up again.
pub fn target_word(path: &str) -> String {
    format!("../{}", quote(name_of(path)))
}

/// Runs `body` in a private folder made in `folder` for the time of one command, and removes
/// the folder after it (`body` runs in a subshell, so its `exit` still lets that happen); the
/// command exits with `body`'s status. For a step that stages and places in one go, such as a
/// link.
pub fn in_one_command(folder: &str, body: &str) -> String {
    format!(
        "{make}; ( {body}\n ); weft_status=$?; cd / && rm -rf -- \"$weft_stage\"; exit \"$weft_status\"",
        make = make_or_exit(folder),
    )
}

/// Runs `command` (a script of weft's own, too long to name in an error) quietly; a non-zero
/// exit fails `op` with what the command printed on its standard error.
pub fn run_step(
    session: &dyn Commands,
    op: &str,
    command: &str,
) -> Result<crate::transport::ExecOutput, HostError> {
    step_with(session, op, command, false)
}

/// `run_step` for a command that carries a file's text: under sudo its text goes on the
/// input of sudo's shell, never in a process's arguments (`RunOptions::carried`).
pub fn run_carried_step(
    session: &dyn Commands,
    op: &str,
    command: &str,
) -> Result<crate::transport::ExecOutput, HostError> {
    step_with(session, op, command, true)
}

fn step_with(
    session: &dyn Commands,
    op: &str,
    command: &str,
    carried: bool,
) -> Result<crate::transport::ExecOutput, HostError> {
    let options = RunOptions {
        quiet: true,
        fail_on_error: false,
        carried,
        ..RunOptions::default()
    };
    let out = session.run(command, &options)?.unwrap_or_default();
    if out.code != 0 {
        let said = out.stderr.trim();
        return Err(HostError::Operation {
            op: op.to_string(),
            message: if said.is_empty() {
                format!("exited with {}", out.code)
            } else {
                said.to_string()
            },
        });
    }
    Ok(out)
}

impl Stage {
    /// Makes a private folder in the folder of `path`, for what will replace `path`.
    pub fn beside(session: &dyn Commands, path: &str) -> Result<Self, HostError> {
        let command = format!(
            "{}; printf '%s\\n' \"$weft_stage\" && exec stat -c %d:%i:%u .",
            make_or_exit(folder_of(path))
        );
        let out = run_step(session, &format!("stage {path}"), &command)?;
        let mut lines = out.stdout.lines();
        match (lines.next(), lines.next()) {
            (Some(dir), Some(id)) if dir.starts_with('/') && !id.is_empty() => Ok(Stage {
                dir: dir.to_string(),
                id: id.to_string(),
            }),
            _ => Err(HostError::Operation {
                op: format!("stage {path}"),
                message: format!(
                    "cannot make a private folder beside `{path}`: {}",
                    out.stderr.trim()
                ),
            }),
        }
    }

    /// `body` run inside the folder, after checking that it is still the one made: names in
    /// `body` are taken from it.
    pub fn command(&self, body: &str) -> String {
        format!(
            "{{ cd -P -- {d} && [ \"$(stat -c %d:%i:%u:%a .)\" = {id} ]; }} || \
             {{ echo 'weft: the private folder '{d}' was replaced; nothing was placed' >&2; exit 1; }}; \
             {body}",
            d = quote(&self.dir),
            id = quote(&format!("{}:700", self.id)),
        )
    }

    /// Makes `new` (a file or folder in the private folder) replace `target`: `owner` and
    /// `group` (names, `chown -R`, which never follows a link inside) and `mode` are set on
    /// weft's own copy first; a folder in the way is moved into the private folder, which is
    /// then removed.
    pub fn place(
        &self,
        session: &dyn Commands,
        target: &str,
        owner: Option<&str>,
        group: Option<&str>,
        mode: Option<u32>,
    ) -> Result<(), HostError> {
        let mut steps = vec![
            "if [ -L new ] || [ ! -e new ]; then echo 'weft: the load left no file or folder named new' >&2; exit 1; fi"
                .to_string(),
        ];
        steps.extend(attribute_steps(
            "new",
            true,
            chown_spec(owner, group).as_deref(),
            mode,
        ));
        let t = target_word(target);
        // A folder cannot be renamed over a folder that holds anything: the old one goes into
        // the private folder first (a link there is moved itself, never followed).
        steps.push(format!(
            "if [ -d new ] && {{ [ -e {t} ] || [ -L {t} ]; }}; then mv -T -- {t} old; fi"
        ));
        steps.push(format!("mv -f -T -- new {t}"));
        let placed = run_step(
            session,
            &format!("place {target}"),
            &self.command(&steps.join(" && ")),
        );
        self.remove(session);
        placed.map(|_| ())
    }

    /// Removes the folder and what is left in it. By its name: if the name was swapped, `rm`
    /// removes the link or the other user's folder, never what a link points to.
    pub fn remove(&self, session: &dyn Commands) {
        let options = RunOptions {
            quiet: true,
            fail_on_error: false,
            always: true,
            ..RunOptions::default()
        };
        let _ = session.run(&format!("rm -rf -- {}", quote(&self.dir)), &options);
    }
}

/// The largest file `write_command` writes: the command carries the text, which the kept
/// shell reads line by line.
pub const SMALL_WRITE: usize = 16 * 1024;

/// What `write_command` prints when the file got its time stamp.
pub const STAMPED: &str = "weft-stamped";

/// The text of `data` when `write_command` may carry it: at most `SMALL_WRITE` bytes of UTF-8
/// with no NUL, which no shell word can hold.
pub fn small_text(data: &[u8]) -> Option<&str> {
    if data.len() > SMALL_WRITE || data.contains(&0) {
        return None;
    }
    std::str::from_utf8(data).ok()
}

/// One command that replaces `path` with `text` as `put_file` does through a transport: the
/// new file is made in a private folder beside `path`, gets `owner` (ids; else the group of a
/// set-group-id folder, as a file made in it would), then its mode, then the whole-second time
/// `stamp` (printing `STAMPED`; a `touch` without `-d @` leaves it unstamped), and a rename
/// puts it in place, replacing a planted link itself. The mode is `mode`, else that of the
/// regular file replaced (a link's target is never looked at), else 0644. `printf` is a builtin: the text is in no process's arguments.
pub fn write_command(
    path: &str,
    text: &str,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    fresh: bool,
    stamp: u64,
) -> String {
    let t = target_word(path);
    // A mode with no execute or special bit is made by the umask as `printf` creates the file:
    // no `chmod` to run (what a host runs for each file is most of its cost, issue 33).
    let by_umask = match (mode, fresh) {
        (Some(mode), _) if mode & 0o7111 == 0 => Some(mode),
        (None, true) => Some(0o644),
        _ => None,
    };
    let mut steps = vec![format!(
        "umask {:03o} && printf %s {} > new",
        0o777 & !by_umask.unwrap_or(0o600),
        quote(text)
    )];
    if owner.is_none() {
        // Made in the target's folder, a file would take the group of a set-group-id folder
        // (Debian's /etc/redis): the private one has no such bit, so the group is given here.
        steps.push(
            "{ [ ! -g .. ] || chown -- \":$(stat -c %g ..)\" new 2>/dev/null || :; }".to_string(),
        );
    }
    let owner = owner.map(|(uid, gid)| format!("{uid}:{gid}"));
    let chmod = mode.filter(|_| by_umask.is_none());
    steps.extend(attribute_steps("new", false, owner.as_deref(), chmod));
    if mode.is_none() && by_umask.is_none() {
        steps.push(format!(
            "{{ weft_m=644; weft_x=$(stat -c %F:%a -- {t} 2>/dev/null); case $weft_x in \
             'regular file:'*|'regular empty file:'*) weft_m=${{weft_x##*:}};; esac; \
             chmod \"$weft_m\" new; }}"
        ));
    }
    steps.push(format!(
        "{{ touch -d @{stamp} new 2>/dev/null && echo {STAMPED} || :; }}"
    ));
    steps.push(format!("mv -f -T -- new {t}"));
    in_one_command(folder_of(path), &steps.join(" && "))
}

/// `user:group` as `chown` takes it, either part missing; `None` when both are.
pub fn chown_spec(owner: Option<&str>, group: Option<&str>) -> Option<String> {
    match (owner, group) {
        (Some(o), Some(g)) => Some(format!("{o}:{g}")),
        (Some(o), None) => Some(o.to_string()),
        (None, Some(g)) => Some(format!(":{g}")),
        (None, None) => None,
    }
}

/// The steps that give `name` (a name weft holds, in a folder of its own) the owner `spec`,
/// with `-R` when `recursive`, then the mode: the owner goes first, as a change of owner clears
/// a set-user-id bit of the mode.
pub fn attribute_steps(
    name: &str,
    recursive: bool,
    spec: Option<&str>,
    mode: Option<u32>,
) -> Vec<String> {
    let mut steps = Vec::new();
    if let Some(spec) = spec {
        let r = if recursive { "-R " } else { "" };
        steps.push(format!("chown {r}-- {} {name}", quote(spec)));
    }
    if let Some(mode) = mode {
        steps.push(format!("chmod {mode:o} {name}"));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_of_a_path_is_its_parent() {
        assert_eq!(folder_of("/var/lib/redis/dump.rdb"), "/var/lib/redis");
        assert_eq!(folder_of("/srv/shared/uploads/"), "/srv/shared");
        assert_eq!(folder_of("/current"), "/");
        assert_eq!(folder_of("current"), ".");
    }

    #[test]
    fn a_one_command_stage_runs_its_body_inside_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let target = dir.path().join("out").display().to_string();
        let script = in_one_command(
            folder_of(&target),
            &format!(
                "echo hi > f && pwd -P && echo x > {} && exit 7",
                target_word(&target)
            ),
        );
        let out = sh(&script, dir.path());
        assert_eq!(out.status.code(), Some(7), "{out:?}");
        let inside = String::from_utf8_lossy(&out.stdout);
        let folder = dir
            .path()
            .canonicalize()
            .expect("real")
            .display()
            .to_string();
        assert!(
            inside.contains(&format!("{folder}/.weft-stage.")),
            "{inside}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["out"]);
        // A relative target is taken from where the command started.
        let from = tempfile::tempdir().expect("tmp");
        let script = in_one_command(
            folder_of("rel"),
            &format!("echo x > {}", target_word("rel")),
        );
        assert!(sh(&script, from.path()).status.success());
        assert!(from.path().join("rel").exists());
    }

    #[test]
    fn a_written_file_gets_its_text_mode_and_stamp_and_replaces_a_planted_link_itself() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().expect("tmp");
        let at = |name: &str| dir.path().join(name);
        let path = |name: &str| at(name).display().to_string();
        let text = "a 'quoted' $HOME `x`\n\\ no newline at the end";
        let stamp = 1_700_000_000;

        // New: 0644, stamped, the text byte for byte.
        let out = sh(
            &write_command(&path("new.conf"), text, None, None, true, stamp),
            dir.path(),
        );
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(STAMPED),
            "{out:?}"
        );
        assert_eq!(
            std::fs::read_to_string(at("new.conf")).expect("written"),
            text
        );
        let meta = std::fs::metadata(at("new.conf")).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        assert_eq!(meta.mtime(), stamp as i64);

        // Replaced without a mode: keeps the mode of the regular file it replaces.
        std::fs::write(at("kept.conf"), "old").expect("old");
        std::fs::set_permissions(at("kept.conf"), std::fs::Permissions::from_mode(0o640))
            .expect("mode");
        let out = sh(
            &write_command(&path("kept.conf"), "new\n", None, None, false, stamp),
            dir.path(),
        );
        assert!(out.status.success(), "{out:?}");
        let meta = std::fs::metadata(at("kept.conf")).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!(
            std::fs::read_to_string(at("kept.conf")).expect("read"),
            "new\n"
        );

        // A link planted at the name: neither written through nor its target's mode taken.
        std::fs::write(at("victim"), "precious").expect("victim");
        std::fs::set_permissions(at("victim"), std::fs::Permissions::from_mode(0o4755))
            .expect("mode");
        std::os::unix::fs::symlink(at("victim"), at("linked.conf")).expect("link");
        let out = sh(
            &write_command(&path("linked.conf"), "mine\n", None, None, false, stamp),
            dir.path(),
        );
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(at("victim")).expect("victim"),
            "precious"
        );
        let meta = std::fs::symlink_metadata(at("linked.conf")).expect("meta");
        assert!(
            meta.file_type().is_file(),
            "the link is replaced by the file"
        );
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);

        // A given mode wins; nothing of weft's is left beside the files.
        let out = sh(
            &write_command(&path("given"), "x", Some(0o600), None, true, stamp),
            dir.path(),
        );
        assert!(out.status.success(), "{out:?}");
        let meta = std::fs::metadata(at("given")).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["given", "kept.conf", "linked.conf", "new.conf", "victim"]
        );
    }

    #[test]
    fn a_private_folder_swapped_for_a_link_after_mktemp_is_never_written_into() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        // In the same folder, owned by the same user, mode 0700: only its identity tells it
        // from the folder `mktemp` made.
        let work = dir.path().join("work");
        let elsewhere = work.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).expect("mode");
        // A `mktemp` first on the PATH that, as the folder's owner could, renames the folder
        // it made away and leaves a link to another folder under its name.
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let shim = bin.join("mktemp");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\nd=$(/usr/bin/mktemp \"$@\") || exit 1\nmv -- \"$d\" \"$d.moved\" && \
                 ln -s {} \"$d\" && echo \"$d\"\n",
                quote(&elsewhere.display().to_string())
            ),
        )
        .expect("shim");
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("mode");
        let target = work.join("app.conf").display().to_string();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(write_command(&target, "planted?\n", None, None, true, 1))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .current_dir(dir.path())
            .output()
            .expect("sh");
        assert!(!out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot make a private folder"),
            "{out:?}"
        );
        let written: Vec<_> = std::fs::read_dir(&elsewhere)
            .expect("elsewhere")
            .filter_map(Result::ok)
            .collect();
        assert!(written.is_empty(), "{written:?}");
        assert!(!std::path::Path::new(&target).exists());
    }

    #[test]
    fn only_small_text_without_nul_is_written_by_a_command() {
        assert_eq!(small_text(b"listen 80;\n"), Some("listen 80;\n"));
        assert_eq!(small_text(b"a\0b"), None);
        assert_eq!(small_text(&[0xff, 0xfe]), None);
        assert_eq!(small_text(&vec![b'x'; SMALL_WRITE + 1]), None);
        assert!(small_text(&vec![b'x'; SMALL_WRITE]).is_some());
    }

    fn sh(script: &str, dir: &std::path::Path) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .expect("sh")
    }

    #[test]
    fn entering_a_folder_follows_no_link_another_user_owns() {
        let dir = tempfile::tempdir().expect("tmp");
        let real = dir.path().join("real");
        std::fs::create_dir(&real).expect("real");
        let own = dir.path().join("own");
        std::os::unix::fs::symlink(&real, &own).expect("link");
        let theirs = dir.path().join("theirs");
        std::os::unix::fs::symlink(&real, &theirs).expect("link");
        // Another user's link: only root can give one away, so as anyone else this is not
        // theirs and the case is left out.
        let given = std::os::unix::fs::lchown(&theirs, Some(65534), Some(65534)).is_ok();
        let inside = |folder: &std::path::Path| {
            let folder = folder.display().to_string();
            sh(&format!("{} && pwd -P", enter(&folder, false)), dir.path())
        };
        let real_path = real.canonicalize().expect("real").display().to_string();
        for through in [&real, &own] {
            let out = inside(through);
            assert!(out.status.success(), "{out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), real_path);
        }
        if given {
            let out = inside(&theirs.join("sub"));
            assert!(!out.status.success(), "{out:?}");
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(said.contains("is a symbolic link of user 65534"), "{said}");
        }
        // `make` makes the missing folders on the way, as `mkdir -p`.
        let deep = real.join("a/b");
        let out = sh(
            &format!("{} && pwd -P", enter(&deep.display().to_string(), true)),
            dir.path(),
        );
        assert!(out.status.success(), "{out:?}");
        assert!(deep.is_dir());
        // A relative folder is taken from where the command is.
        let out = sh(&format!("{} && pwd -P", enter("own/a", false)), dir.path());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{real_path}/a")
        );
    }
}
