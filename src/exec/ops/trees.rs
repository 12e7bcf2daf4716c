//! Chores on paths as operations (`touch`, `rename`, `copy_tree`) and the facts of whole
//! folders (`tree_sum`, `files`, `realpath`): what the stdlib did with `touch`, `mv`, `cp -a`,
//! tar pipes and `find` (issue 32). Each writes from inside the folder it acts in, entered name
//! by name (`shell::enter`: no link another user owns is followed on the way), and never
//! follows a link as the last name.

use crate::exec::session::{HostError, HostSession};
use crate::exec::stage::{enter, folder_of, in_one_command, name_of, run_step, target_word};
use crate::shell::quote;

use super::{fail, OpResult};

/// Refuses a path whose last name is no file's: `/`, `.` or `..`.
fn require_name(op: &str, path: &str) -> Result<(), HostError> {
    if matches!(name_of(path), "" | "." | "..") {
        return Err(fail(op, format!("`{path}` names no file or folder")));
    }
    Ok(())
}

/// Sets the modification time of `path` to now, as `touch` does, making an empty file when
/// nothing is there. A link is touched itself, never what it points to; a new file is made in
/// a private folder beside and linked in under its name (`ln`, which fails rather than follow
/// a link planted meanwhile). Always a change: the time moves.
pub fn touch(session: &HostSession, path: &str) -> OpResult {
    let op = format!("touch {path}");
    require_name(&op, path)?;
    if !session.is_check() {
        run_step(session, &op, &touch_command(path))?;
    }
    Ok(session.report(&op, true))
}

/// The command of `touch`: a `ln` that fails because something appeared at the name meanwhile
/// touches that instead; one that fails for any other reason (a name too long, a full disk)
/// runs again to say why, and fails the step.
pub(crate) fn touch_command(path: &str) -> String {
    let t = target_word(path);
    let body = format!(
        "if [ -e {t} ] || [ -L {t} ]; then exec touch -c -h -- {t}; fi; \
         : > new && {{ ln -T -- new {t} 2>/dev/null || \
           if [ -e {t} ] || [ -L {t} ]; then exec touch -c -h -- {t}; else exec ln -T -- new {t}; fi; }}"
    );
    in_one_command(folder_of(path), &body)
}

/// Renames `from` to `to`, in one folder, atomically (`rename(2)`: what was at `to` is
/// replaced, a link at either name is renamed or replaced itself, never followed). Unchanged
/// when `from` is gone and `to` is there: the rename was done. Both gone is an error (under
/// `--check`, a rename that would run: what makes `from` did not), as is a folder in the way
/// at `to` or two different folders.
pub fn rename(session: &HostSession, from: &str, to: &str) -> OpResult {
    let op = format!("rename {from} -> {to}");
    require_name(&op, from)?;
    require_name(&op, to)?;
    let folder = folder_of(from);
    if folder != folder_of(to) {
        return Err(fail(
            &op,
            format!("`{from}` and `{to}` are in different folders: a rename stays in one"),
        ));
    }
    let (f, t) = (quote(from), quote(to));
    let out = session.probe(&format!(
        "if [ -e {f} ] || [ -L {f} ]; then echo from; fi; if [ -e {t} ] || [ -L {t} ]; then echo to; fi"
    ))?;
    let present = |what: &str| out.stdout.lines().any(|l| l == what);
    if !present("from") {
        if present("to") {
            return Ok(session.report(&op, false));
        }
        // Under --check an earlier step that would make `from` did not run.
        if session.is_check() {
            return Ok(session.report(&op, true));
        }
        return Err(fail(&op, format!("nothing is at {from} or {to}")));
    }
    if !session.is_check() {
        let script = format!(
            "{} && exec mv -f -T -- {} {}",
            enter(folder, false),
            quote(name_of(from)),
            quote(name_of(to))
        );
        run_step(session, &op, &script)?;
    }
    Ok(session.report(&op, true))
}

/// `--exclude` words of tar for `names` (matched at any depth).
fn tar_excludes(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!(" --exclude={}", quote(n)))
        .collect()
}

/// Prints the first folder in the current one (itself included) that a user other than root
/// or the session's could swap or fill (owned by them, or writable by group or world), and
/// exits 4; a copy as root into such a folder could be led outside it.
const REFUSE_SHARED: &str =
    "weft_me=$(id -u); weft_bad=$(find . -type d \\( \\( ! -user 0 ! -user \"$weft_me\" \\) \
     -o -perm -0002 -o \\( -perm -0020 ! -group 0 ! -group \"$(id -g)\" \\) \\) -print -quit) \
     || exit 1; [ -z \"$weft_bad\" ] || { printf '%s\\n' \"$weft_bad\"; exit 4; }";

/// Copies what folder `from` holds into folder `to` (made when missing): files, folders and
/// links with their modes less group and world write and set-id bits, and their times, all
/// owned by the session's user (so a copy as root of a user's tree is root's); `to` itself
/// keeps its owner and mode, and what it holds besides stays. `exclude` names files and
/// folders left out at any depth (`.git`). A `to` holding a folder (itself included) another
/// user owns or can write is refused. Unchanged when `tar --compare` finds every one of them
/// in `to` alike already.
pub fn copy_tree(session: &HostSession, from: &str, to: &str, exclude: &[String]) -> OpResult {
    let op = format!("copy_tree {from} -> {to}");
    require_name(&op, to)?;
    let x = tar_excludes(exclude);
    // The top entries, not `.`: `to` keeps its own owner and mode. Owner and mode are set in
    // the archive so that the compare sees what the extract makes.
    let read = format!(
        "( {} && find . -mindepth 1 -maxdepth 1 -print0 | exec tar --null{x} \
         --owner=\"$(id -un):$(id -u)\" --group=\"$(id -gn):$(id -g)\" --mode=go-w,ug-s -cf - -T - )",
        enter(from, false)
    );
    let there = session.probe(&format!(
        "[ -d {f} ] || exit 3; ( {enter_to} 2>/dev/null || exit 0; {REFUSE_SHARED} ) || exit $?; \
         {read} 2>/dev/null | ( {enter_to} && exec timeout {WALK_SECS} tar -df - ) >/dev/null 2>&1",
        enter_to = enter(to, false),
        f = quote(from),
    ))?;
    match there.code {
        0 => return Ok(session.report(&op, false)),
        3 => return Err(fail(&op, format!("{from} is not a folder"))),
        4 => return Err(shared(&op, to, &there.stdout)),
        124 => {
            return Err(fail(
                &op,
                format!("comparing {from} with {to} took over {WALK_SECS} s"),
            ))
        }
        _ => {}
    }
    if !session.is_check() {
        // sh has no pipefail: the reading side's status comes back on fd 3.
        let script = format!(
            "weft_read=$( {{ {{ {read}; echo \"$?\" >&3; }} | ( {} && {{ {REFUSE_SHARED}; }} >&2 && umask 022 && \
             exec tar --no-same-owner --no-same-permissions --no-overwrite-dir -xf - ) >&2; }} 3>&1 ); \
             weft_write=$?; [ \"$weft_write\" = 0 ] || exit \"$weft_write\"; \
             [ \"$weft_read\" = 0 ] || {{ echo 'weft: cannot read '{f} >&2; exit 1; }}",
            enter(to, true),
            f = quote(from),
        );
        run_step(session, &op, &script)?;
    }
    Ok(session.report(&op, true))
}

/// The refusal of a `to` holding `found`, a folder another user could change.
fn shared(op: &str, to: &str, found: &str) -> HostError {
    let found = found.lines().next().unwrap_or(".");
    let folder = match found.strip_prefix("./") {
        Some(inside) => format!("{}/{inside}", to.trim_end_matches('/')),
        None => to.to_string(),
    };
    fail(
        op,
        format!("{folder} is owned or writable by a user other than root or this session's: a copy into it could be led outside {to}"),
    )
}

/// How long a walk of a folder (`find`, the sums, a compare) may take on the host.
const WALK_SECS: u32 = 600;

/// The `find` words that skip `exclude` (at any depth) and `exclude_top` (directly in the
/// folder only, as `-path ./NAME`) and select regular files.
fn find_files(exclude: &[String], exclude_top: &[String]) -> String {
    let names: Vec<String> = exclude
        .iter()
        .map(|n| format!("-name {}", quote(n)))
        .chain(
            exclude_top
                .iter()
                .map(|n| format!("-path {}", quote(&format!("./{n}")))),
        )
        .collect();
    if names.is_empty() {
        return format!("timeout {WALK_SECS} find . -type f -print0");
    }
    format!(
        "timeout {WALK_SECS} find . \\( {} \\) -prune -o -type f -print0",
        names.join(" -o ")
    )
}

/// What `tree_sum` leaves out and hashes first.
#[derive(Debug, Default, Clone)]
pub struct SumSpec {
    /// Names left out at any depth.
    pub exclude: Vec<String>,
    /// Names left out directly in the folder only.
    pub exclude_top: Vec<String>,
    /// Text hashed before the files' lines.
    pub header: String,
}

/// A SHA-256 (lowercase hex) over the names and contents of the regular files under `dir`,
/// what `spec` excludes left out: `sha256sum` of `spec.header` then the `sha256sum` lines of
/// every file, by name in byte order. The same files give the same sum on every machine.
/// `None` when `dir` is no folder. A `find` or `sha256sum` that fails or outlives its
/// deadline fails the fact: a partial sum is never given.
pub fn tree_sum(
    session: &HostSession,
    dir: &str,
    spec: &SumSpec,
) -> Result<Option<String>, HostError> {
    // sh has no pipefail: each side's status comes out on fd 4, beside the sum.
    let out = session.probe(&format!(
        "[ -d {q} ] || exit 3; {} || exit 1; {{ {{ printf '%s' {h}; {{ {}; echo \"find $?\" >&4; }} \
         | LC_ALL=C sort -z | {{ timeout {WALK_SECS} xargs -0 -r sha256sum; echo \"xargs $?\" >&4; }}; }} \
         | timeout {WALK_SECS} sha256sum; }} 4>&1",
        enter(dir, false),
        find_files(&spec.exclude, &spec.exclude_top),
        q = quote(dir),
        h = quote(&spec.header),
    ))?;
    let op = format!("tree_sum {dir}");
    match out.code {
        0 => {}
        3 => return Ok(None),
        code => {
            return Err(fail(
                &op,
                format!("cannot read {dir} (exit {code}): {}", out.stderr.trim()),
            ))
        }
    }
    let mut sum = None;
    for line in out.stdout.lines() {
        match line.split_once(' ') {
            Some((step @ ("find" | "xargs"), code)) if code != "0" => {
                let said = out.stderr.trim();
                return Err(fail(
                    &op,
                    format!("cannot read {dir} ({step} exited {code}): {said}"),
                ));
            }
            Some(("find" | "xargs", _)) => {}
            _ => {
                let hex = line.get(..64).unwrap_or_default();
                if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    sum = Some(hex.to_string());
                }
            }
        }
    }
    match sum {
        Some(sum) => Ok(Some(sum)),
        None => Err(fail(
            &op,
            format!("sha256sum printed no sum: {}", out.stdout.trim()),
        )),
    }
}

/// The paths of the regular files under `dir`, relative to it, sorted, `exclude` left out;
/// empty when `dir` is no folder.
pub fn files(
    session: &HostSession,
    dir: &str,
    exclude: &[String],
) -> Result<Vec<String>, HostError> {
    let out = session.probe(&format!(
        "[ -d {q} ] || exit 0; {} && {}",
        enter(dir, false),
        find_files(exclude, &[]),
        q = quote(dir),
    ))?;
    if out.code != 0 {
        return Err(fail(
            &format!("files {dir}"),
            format!(
                "cannot read {dir} (exit {}): {}",
                out.code,
                out.stderr.trim()
            ),
        ));
    }
    let mut names: Vec<String> = out
        .stdout
        .split('\0')
        .filter(|n| !n.is_empty())
        .map(|n| n.strip_prefix("./").unwrap_or(n).to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// `path` with every link resolved and no `.` or `..` (`realpath -e`); `None` when it, or a
/// link on the way, leads nowhere.
pub fn realpath(session: &HostSession, path: &str) -> Result<Option<String>, HostError> {
    let out = session.probe(&format!("exec realpath -e -- {}", quote(path)))?;
    if out.code != 0 {
        return Ok(None);
    }
    let resolved = out.stdout.strip_suffix('\n').unwrap_or(&out.stdout);
    Ok((!resolved.is_empty()).then(|| resolved.to_string()))
}
