//! Files, directories, links, absent paths, lines in files, uploads and folder sync, and files
//! written from a script's text or a template.

use std::path::Path;

use walkdir::WalkDir;

use crate::exec::remote_sums::{self, STAT_FORMAT};
use crate::exec::session::{HostError, HostSession};
use crate::inventory::Vars;
use crate::shell::quote;

use super::{fail, OpResult};

/// What a file should look like; unset fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct FileSpec {
    /// Exact content; `None` creates an empty file only when missing.
    pub content: Option<Vec<u8>>,
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owning user.
    pub owner: Option<String>,
    /// Owning group.
    pub group: Option<String>,
    /// Never show the content (diffs are hidden, the value is masked).
    pub sensitive: bool,
    /// A command that must accept new content before it replaces the file (`%s`: a staged
    /// copy; without it the command sees the file's folder as it will be).
    pub validate: Option<Vec<String>>,
}

/// Type, mode, owner and group of a path, `None` when it does not exist.
pub(crate) struct PathState {
    kind: String,
    pub mode: u32,
    owner: String,
    group: String,
    /// `device:inode`, to tell that a path still names what was looked at.
    id: String,
}

/// Fails unless what is at `path` (if anything) is a regular file, empty or not.
pub(crate) fn require_file(
    state: Option<&PathState>,
    path: &str,
) -> Result<(), crate::exec::session::HostError> {
    match state {
        Some(s) if s.kind != "regular file" && s.kind != "regular empty file" => Err(fail(
            &format!("file {path}"),
            format!("{path} is a {}, not a file", s.kind),
        )),
        _ => Ok(()),
    }
}

fn stat(
    session: &HostSession,
    path: &str,
) -> Result<Option<PathState>, crate::exec::session::HostError> {
    Ok(stat_and_sum(session, path, false, false)?.0)
}

/// The state of `path` and, with `sum`, the SHA-256 of its content when it is a regular file
/// that `sha256sum` could read: one probe for a file's whole check. When the file is as weft
/// last wrote it (`exec::remote_sums`), the probe is only a `stat`, shared with the host's
/// other known files (`exec::stat_lines`); a file that changed since costs a second probe,
/// which hashes it. With `keep`, a sum the host computed is kept for the next checks (never
/// for secrets).
pub(crate) fn stat_and_sum(
    session: &HostSession,
    path: &str,
    sum: bool,
    keep: bool,
) -> Result<(Option<PathState>, Option<String>), crate::exec::session::HostError> {
    let q = quote(path);
    let (sums, host) = (session.remote_sums(), session.spec.address.as_str());
    // A sum that must not be kept (a file with a secret) is dropped if an older run kept it.
    if sum && !keep && sums.knows(host, path) {
        sums.forget(host, path);
    }
    let known = sums.knows(host, path);
    // When the probe that printed the line started (none: it was read ahead), and whether a
    // hash should bring the host's clock: a sum is kept only with both.
    let mut stat_started = None;
    let clock = keep && session.host_clock().is_none();
    let (line, hashed) = match known
        .then(|| read_ahead(session, path))
        .transpose()?
        .flatten()
    {
        Some(line) => (line, None),
        None => {
            // The tests are builtins: a missing path costs the host no process. A `stat` that
            // ends the command replaces the command's shell (`exec`) instead of forking.
            let exists = format!("{{ [ -e {q} ] || [ -L {q} ]; }}");
            let stat = format!("stat -c '{STAT_FORMAT}' -- {q} 2>/dev/null");
            let command = if sum && !known {
                format!("{exists} && {stat} && {}", hash_command(&q, clock))
            } else {
                format!("{exists} && exec {stat}")
            };
            stat_started = Some(remote_sums::clock());
            let out = session.file_probe(&command)?;
            let mut lines = out.stdout.lines();
            let line = (out.code == 0).then(|| lines.next().unwrap_or_default().trim().to_string());
            (line, hashed_sum(session, lines))
        }
    };
    let Some(line) = line else {
        return Ok((None, None));
    };
    let fields: Vec<&str> = line.splitn(5, '|').collect();
    if fields.len() != 5 {
        return Ok((None, None));
    }
    // The rest ends with `%d|%i`.
    let mut tail = fields[4].rsplitn(3, '|');
    let (inode, device) = (
        tail.next().unwrap_or_default(),
        tail.next().unwrap_or_default(),
    );
    let state = PathState {
        kind: fields[0].to_string(),
        mode: u32::from_str_radix(fields[1], 8).unwrap_or(0),
        owner: fields[2].to_string(),
        group: fields[3].to_string(),
        id: format!("{device}:{inode}"),
    };
    let hashed = match (sum, known) {
        (false, _) => None,
        (true, false) => hashed,
        (true, true) => match sums.trusted(host, path, &line) {
            Some(sum) => return Ok((Some(state), Some(sum))),
            None => {
                sums.forget(host, path);
                let clock = clock && stat_started.is_some();
                let out = session.file_probe(&hash_command(&q, clock))?;
                hashed_sum(session, out.stdout.lines())
            }
        },
    };
    // The host's time when it printed the line, or a little before: kept sums need it.
    let printed = stat_started
        .zip(session.host_clock())
        .map(|(t, offset)| t + offset);
    if let (true, Some(hashed), Some(printed)) = (keep, &hashed, printed) {
        sums.seen(host, path, &line, hashed, printed.floor() as i64);
    }
    Ok((Some(state), hashed))
}

/// The stat line of `path` (`None` inside: missing) from one `stat` of the host's known
/// files, read now or by an earlier check; `None` when reading ahead would stat `path` alone.
fn read_ahead(
    session: &HostSession,
    path: &str,
) -> Result<Option<Option<String>>, crate::exec::session::HostError> {
    let lines = session.stat_lines();
    if let Some(line) = lines.take(path) {
        return Ok(Some(line));
    }
    let host = session.spec.address.as_str();
    let paths = lines.wanted(path, session.remote_sums().known_paths(host));
    if paths.len() < 2 {
        return Ok(None);
    }
    let quoted: Vec<String> = paths.iter().map(|p| quote(p)).collect();
    let out = session.file_probe(&format!(
        "exec stat -c '{STAT_FORMAT}|%n' -- {} 2>/dev/null",
        quoted.join(" ")
    ))?;
    lines.fill(&paths, &out.stdout, STAT_FORMAT.split('|').count());
    Ok(lines.take(path))
}

/// The sum a probe's hash printed; the host's clock after it, when asked for
/// (`hash_command`), sets the session's `host_clock`.
fn hashed_sum<'a>(
    session: &HostSession,
    mut lines: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let sha256 = sum_in(lines.next())?;
    if let Some(host_now) = lines.next().and_then(|l| l.trim().parse::<f64>().ok()) {
        // The host printed its clock before the probe returned: this offset is at most the
        // true one, so times derived from it are never later than the host's.
        session.set_host_clock(host_now - remote_sums::clock());
    }
    Some(sha256)
}

/// The sum on a line of `sha256sum`'s output, if it printed one.
fn sum_in(line: Option<&str>) -> Option<String> {
    line.and_then(|l| l.split_whitespace().next())
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
}

/// Prints the SHA-256 of `q` (quoted) when it is a regular file, then with `clock` the host's
/// time (unix seconds), and always succeeds: it never hashes a fifo or a device (which could
/// block), and a failed hash only means the content is read and compared instead.
fn hash_command(q: &str, clock: bool) -> String {
    let date = if clock { " && date +%s" } else { "" };
    format!(
        "{{ if [ -f {q} ] && [ ! -L {q} ]; then sha256sum -- {q} 2>/dev/null{date}; fi; true; }}"
    )
}

/// What of mode, owner and group differs from `state`: the mode, and `user:group` as `chown`
/// takes it (either part may be missing) with the reason to report.
fn differences(
    state: Option<&PathState>,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
) -> (Option<u32>, Option<String>) {
    let mode = mode.filter(|m| state.map(|s| s.mode) != Some(*m));
    let owner_differs = owner.is_some_and(|o| state.map(|s| s.owner.as_str()) != Some(o));
    let group_differs = group.is_some_and(|g| state.map(|s| s.group.as_str()) != Some(g));
    let spec = (owner_differs || group_differs)
        .then(|| crate::exec::stage::chown_spec(owner, group))
        .flatten();
    (mode, spec)
}

/// The reasons to report for a mode and an owner set.
fn reasons_for(mode: Option<u32>, spec: Option<&str>) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(mode) = mode {
        reasons.push(format!("mode {mode:04o}"));
    }
    if let Some(spec) = spec {
        reasons.push(format!("owner {spec}"));
    }
    reasons
}

/// Sets mode, owner and group of the regular file `state` describes where they differ, on the
/// file itself, never through a link, nor on a file swapped in since `state` was read (issue
/// 29): on a second name for the file made in a private folder beside it (`ln -P`, which links
/// a link itself, never its target; the folder is reached without following another user's
/// link), after checking that it is the file looked at. An SFTP handle would do for the last
/// name, but its open follows links on the way, and under `--become` the login may not open
/// the file at all.
fn file_attributes(
    session: &HostSession,
    path: &str,
    state: &PathState,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<Vec<String>, crate::exec::session::HostError> {
    let (mode, spec) = differences(Some(state), mode, owner, group);
    if (mode.is_none() && spec.is_none()) || session.is_check() {
        return Ok(reasons_for(mode, spec.as_deref()));
    }
    let op = format!("file {path}");
    let mut steps = vec![format!(
        "{{ ln -P -- {} f && [ ! -L f ] && [ -f f ] && [ \"$(stat -c %d:%i f)\" = {} ]; }} || \
         {{ echo 'weft: '{} 'is no longer the file weft looked at; nothing was changed' >&2; exit 1; }}",
        crate::exec::stage::target_word(path),
        quote(&state.id),
        quote(path),
    )];
    steps.extend(crate::exec::stage::attribute_steps(
        "f",
        false,
        spec.as_deref(),
        mode,
    ));
    let script = crate::exec::stage::in_one_command(
        crate::exec::stage::folder_of(path),
        &steps.join(" && "),
    );
    crate::exec::stage::run_step(session, &op, &script)?;
    Ok(reasons_for(mode, spec.as_deref()))
}

/// Sets mode, owner and group of the folder `state` describes where they differ, from inside
/// it: the folder is entered name by name (`stage::enter`, no link another user owns is
/// followed) and must be the one looked at, then `chown` and `chmod` act on `.`, which no
/// swapped name can redirect.
fn directory_attributes(
    session: &HostSession,
    path: &str,
    state: &PathState,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<Vec<String>, crate::exec::session::HostError> {
    let (mode, spec) = differences(Some(state), mode, owner, group);
    if (mode.is_none() && spec.is_none()) || session.is_check() {
        return Ok(reasons_for(mode, spec.as_deref()));
    }
    let mut steps = vec![format!(
        "{{ [ \"$(stat -c %d:%i .)\" = {} ] || \
         {{ echo 'weft: '{} 'is no longer the folder weft looked at; nothing was changed' >&2; exit 1; }}; }}",
        quote(&state.id),
        quote(path)
    )];
    steps.extend(crate::exec::stage::attribute_steps(
        ".",
        false,
        spec.as_deref(),
        mode,
    ));
    let script = format!(
        "{} && {}",
        crate::exec::stage::enter(path, false),
        steps.join(" && ")
    );
    crate::exec::stage::run_step(session, &format!("directory {path}"), &script)?;
    Ok(reasons_for(mode, spec.as_deref()))
}

/// The user and group ids a file written at `path` gets: `owner` and `group` (names or
/// numbers) looked up on the host; where one is not given, that of the file there now (with
/// `fresh` unset), else what a new file would get (the user weft acts as; the folder's group
/// when the folder is set-group-id, else the user's).
fn owner_ids(
    session: &HostSession,
    path: &str,
    owner: Option<&str>,
    group: Option<&str>,
    fresh: bool,
) -> Result<(u32, u32), crate::exec::session::HostError> {
    let q = quote(path);
    let folder = quote(crate::exec::stage::folder_of(path));
    let user = match owner {
        Some(o) if o.bytes().all(|b| b.is_ascii_digit()) && !o.is_empty() => o.to_string(),
        Some(o) => format!("$(id -u -- {} 2>/dev/null)", quote(o)),
        None if !fresh => format!("$(stat -c %u -- {q} 2>/dev/null || id -u)"),
        None => "$(id -u)".to_string(),
    };
    let grp = match group {
        Some(g) if g.bytes().all(|b| b.is_ascii_digit()) && !g.is_empty() => g.to_string(),
        Some(g) => format!("$(getent group -- {} 2>/dev/null | cut -d: -f3)", quote(g)),
        None if !fresh => format!("$(stat -c %g -- {q} 2>/dev/null || id -g)"),
        None => format!("$(if [ -g {folder} ]; then stat -L -c %g -- {folder}; else id -g; fi)"),
    };
    let out = session.probe(&format!("echo \"{user}:{grp}\""))?;
    let line = out.stdout.trim();
    let (u, g) = line.split_once(':').unwrap_or((line, ""));
    let op = format!("file {path}");
    let uid = u.parse::<u32>().map_err(|_| {
        fail(
            &op,
            format!("the host has no user `{}`", owner.unwrap_or_default()),
        )
    })?;
    let gid = g.parse::<u32>().map_err(|_| {
        fail(
            &op,
            format!("the host has no group `{}`", group.unwrap_or_default()),
        )
    })?;
    Ok((uid, gid))
}

/// Runs `check` against `content` before it becomes `path`, so the live file never holds
/// content its daemon rejects, not even for a moment, and a killed run leaves it as it was.
/// With `%s` the check reads a staged copy; without, it runs in a mount namespace of its own
/// where a private copy of the file's folder, holding the new file, is mounted over the
/// folder (`nginx -t` reads every site beside the new one).
fn validate(
    session: &HostSession,
    path: &str,
    content: &[u8],
    mode: Option<u32>,
    check: &[String],
) -> Result<(), crate::exec::session::HostError> {
    if session.is_check() || check.is_empty() {
        return Ok(());
    }
    let (dir, name) = match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some(split) => split,
        None => (".", path),
    };
    // mkdir makes the folder exclusively, and only its owner can enter it.
    let view = format!("/tmp/.weft-check-{:016x}", fastrand::u64(..));
    let staged = format!("{view}/{name}");
    let placeholder = check.iter().any(|a| a.contains("%s"));
    let prepare = if placeholder {
        format!("mkdir -m 700 -- {}", quote(&view))
    } else {
        format!(
            "mkdir -m 700 -- {v} && cp -a -- {d}/. {v}/",
            v = quote(&view),
            d = quote(dir)
        )
    };
    let outcome = session.act(&prepare).and_then(|()| {
        session.put_file(&staged, content, mode, false, false)?;
        let command = if placeholder {
            let argv: Vec<String> = check.iter().map(|a| a.replace("%s", &staged)).collect();
            crate::shell::join(&argv)
        } else {
            format!(
                "unshare -m sh -c 'mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"' sh {} {} {}",
                quote(&view),
                quote(dir),
                crate::shell::join(check)
            )
        };
        session.probe(&command)
    });
    let _ = session.act(&format!("rm -rf -- {}", quote(&view)));
    let out = outcome?;
    if out.code != 0 {
        return Err(crate::exec::session::HostError::Rejected {
            path: path.to_string(),
            command: check.join(" "),
            output: format!("{}{}", out.stderr, out.stdout),
        });
    }
    Ok(())
}

fn step(kind: &str, path: &str, reasons: &[String]) -> String {
    if reasons.is_empty() {
        format!("{kind} {path}")
    } else {
        format!("{kind} {path} ({})", reasons.join(", "))
    }
}

/// Makes `path` a regular file as `spec` describes.
pub fn file(session: &HostSession, path: &str, spec: &FileSpec) -> OpResult {
    let revealed;
    let spec = match &spec.content {
        Some(content) => match session.reveal_bytes(content)? {
            std::borrow::Cow::Borrowed(_) => spec,
            std::borrow::Cow::Owned(content) => {
                revealed = FileSpec {
                    content: Some(content),
                    ..spec.clone()
                };
                &revealed
            }
        },
        None => spec,
    };
    // The sum of a file that holds a secret would let anyone who reads the controller's cache
    // test guesses of it: none is kept, whether the script said `sensitive` or not.
    let keep = !spec.sensitive
        && !spec
            .content
            .as_deref()
            .is_some_and(|c| session.holds_secret(&String::from_utf8_lossy(c)));
    let (state, remote_sum) = stat_and_sum(session, path, spec.content.is_some(), keep)?;
    require_file(state.as_ref(), path)?;
    let (owner, group) = (spec.owner.as_deref(), spec.group.as_deref());
    let new_content = match (&spec.content, &state) {
        (Some(content), _) => {
            // The same SHA-256 is the same content: nothing to read. Otherwise the content is
            // read, to compare it when there was no hash and for the diff.
            let same_sum = remote_sum
                .as_deref()
                .is_some_and(|sum| crate::transport::sha256_bytes(content) == sum);
            let current = match &state {
                Some(_) if same_sum => Some(content.clone()),
                // A sum that differs is a change: the old text is read only to show it.
                Some(_) if remote_sum.is_some() && !session.shows_diffs() => None,
                Some(_) => session.read_regular_file(path)?,
                None => None,
            };
            if current.as_deref() == Some(content.as_slice()) {
                None
            } else {
                let old = current.as_deref().map(String::from_utf8_lossy);
                let new = String::from_utf8_lossy(content);
                session.show_diff(path, old.as_deref(), &new, spec.sensitive);
                Some(content.as_slice())
            }
        }
        // Created as any new file is (a private name, then a rename): `touch` would follow
        // a link planted meanwhile.
        (None, None) => Some(&b""[..]),
        (None, Some(_)) => None,
    };
    let reasons = match (new_content, &state) {
        (Some(content), _) => {
            let mode = spec.mode.or(state.as_ref().map(|s| s.mode));
            if let Some(check) = &spec.validate {
                validate(session, path, content, mode, check)?;
            }
            // The new file gets its mode, owner and group on weft's own copy, before the rename
            // puts it in place: the owner asked for, else that of the file it replaces (the
            // rename makes a new inode, owned by whoever wrote it). Never by name afterwards,
            // when whoever owns the folder could have swapped the name.
            let ids =
                if session.is_check() || (state.is_none() && owner.is_none() && group.is_none()) {
                    None
                } else {
                    Some(owner_ids(session, path, owner, group, state.is_none())?)
                };
            session.put_file_owned(
                path,
                content,
                mode,
                ids,
                state.is_none(),
                keep && spec.content.is_some(),
            )?;
            let mut reasons = vec![if state.is_some() {
                "content"
            } else {
                "created"
            }
            .to_string()];
            let (_, spec) = differences(state.as_ref(), None, owner, group);
            reasons.extend(reasons_for(None, spec.as_deref()));
            reasons
        }
        (None, Some(state)) => file_attributes(session, path, state, spec.mode, owner, group)?,
        (None, None) => Vec::new(),
    };
    Ok(session.report(&step("file", path, &reasons), !reasons.is_empty()))
}

/// Makes `path` a directory (with parents) with the given mode and owner. Missing folders are
/// made name by name from `/` (`stage::enter`); a new directory with a mode or an owner is made
/// in a private folder beside its path, given them there, and renamed into place, so it never
/// appears under its name with other attributes, and no `chmod` or `chown` acts on a name
/// that another user could swap.
pub fn directory(
    session: &HostSession,
    path: &str,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
) -> OpResult {
    let state = stat(session, path)?;
    let op = format!("directory {path}");
    let reasons = match &state {
        Some(s) if s.kind != "directory" => {
            return Err(fail(
                &op,
                format!("{path} is a {}, not a directory", s.kind),
            ));
        }
        Some(s) => directory_attributes(session, path, s, mode, owner, group)?,
        None => {
            let (mode, spec) = differences(None, mode, owner, group);
            if !session.is_check() {
                let folder = crate::exec::stage::folder_of(path);
                let name = crate::exec::stage::name_of(path);
                if matches!(name, "" | "." | "..") {
                    return Err(fail(&op, format!("`{path}` names no folder to make")));
                }
                // The folder it goes in is made as `mkdir -p` would, but entered name by name
                // (in a subshell: the private folder is made from where the command started).
                let parents = format!("( {} ) || exit 1", crate::exec::stage::enter(folder, true));
                let script = if mode.is_none() && spec.is_none() {
                    let n = quote(name);
                    // A folder another run makes at the same moment is no error, as with
                    // `mkdir -p`.
                    format!(
                        "{parents}; {} && {{ {{ [ -d {n} ] && [ ! -L {n} ]; }} || mkdir -- {n} 2>/dev/null || {{ [ -d {n} ] && [ ! -L {n} ]; }} || mkdir -- {n}; }}",
                        crate::exec::stage::enter(folder, false)
                    )
                } else {
                    // In a set-group-id folder a new folder takes the folder's group and the
                    // bit, as `mkdir` there would give it; the private one has neither.
                    let mut steps = vec![
                        "mkdir new".to_string(),
                        "{ [ ! -g .. ] || { chown -- \":$(stat -c %g ..)\" new && chmod g+s new; }; }"
                            .to_string(),
                    ];
                    steps.extend(crate::exec::stage::attribute_steps(
                        "new",
                        false,
                        spec.as_deref(),
                        mode,
                    ));
                    // A rename never replaces a link or a file; an empty folder made meanwhile
                    // is replaced, anything else fails.
                    steps.push(format!(
                        "mv -T -- new {}",
                        crate::exec::stage::target_word(path)
                    ));
                    format!(
                        "{parents}; {}",
                        crate::exec::stage::in_one_command(folder, &steps.join(" && "))
                    )
                };
                crate::exec::stage::run_step(session, &op, &script)?;
            }
            let mut reasons = vec!["created".to_string()];
            reasons.extend(reasons_for(mode, spec.as_deref()));
            reasons
        }
    };
    Ok(session.report(&step("directory", path, &reasons), !reasons.is_empty()))
}

/// Makes `path` a symbolic link to `target`.
pub fn link(session: &HostSession, path: &str, target: &str) -> OpResult {
    let out = session.probe(&format!("readlink -- {}", quote(path)))?;
    let current = (out.code == 0).then(|| out.stdout.trim_end_matches('\n').to_string());
    if current.as_deref() == Some(target) {
        return Ok(session.report(&format!("link {path} -> {target}"), false));
    }
    if current.is_none() {
        if let Some(state) = stat(session, path)? {
            if state.kind == "directory" {
                return Err(fail(
                    &format!("link {path}"),
                    format!("{path} is a directory"),
                ));
            }
        }
    }
    if !session.is_check() {
        // The new link is made in a private folder beside the path (never under a fixed name
        // that whoever owns the folder could fill first), then renamed over it, atomically;
        // the rename fails on a folder in the way. Then the path must read as the link.
        let (p, t) = (crate::exec::stage::target_word(path), quote(target));
        let body = format!(
            "ln -s -- {t} new && mv -f -T -- new {p} && \
             {{ [ \"$(readlink -- {p})\" = {t} ] || \
               {{ echo 'weft: '{q}' is not the new link after the rename' >&2; exit 1; }}; }}",
            q = quote(path)
        );
        let script = crate::exec::stage::in_one_command(crate::exec::stage::folder_of(path), &body);
        crate::exec::stage::run_step(session, &format!("link {path}"), &script)?;
    }
    Ok(session.report(&format!("link {path} -> {target}"), true))
}

/// Makes sure nothing exists at `path`. It is removed from inside its folder, entered name by
/// name (`stage::enter`): `rm -rf` never follows a link as the last name, but it would follow
/// one on the way (`/home/u/x/y` with `x` a link to `/etc` would remove `/etc/y`).
pub fn absent(session: &HostSession, path: &str) -> OpResult {
    let out = session.probe(&format!("test -e {p} || test -L {p}", p = quote(path)))?;
    if out.code != 0 {
        return Ok(session.report(&format!("absent {path}"), false));
    }
    let name = crate::exec::stage::name_of(path);
    let op = format!("absent {path}");
    if matches!(name, "" | "." | "..") {
        return Err(fail(
            &op,
            format!("`{path}` names no file or folder to remove"),
        ));
    }
    if !session.is_check() {
        let script = format!(
            "{} && rm -rf -- {}",
            crate::exec::stage::enter(crate::exec::stage::folder_of(path), false),
            quote(name)
        );
        crate::exec::stage::run_step(session, &op, &script)?;
    }
    Ok(session.report(&op, true))
}

/// Makes `line` present in the file at `path`: it replaces the first line matching `pattern`
/// (a regular expression), else it is appended. The file is created when missing.
pub fn line(
    session: &HostSession,
    path: &str,
    line: &str,
    pattern: Option<&str>,
    sensitive: bool,
) -> OpResult {
    // A secret read on first use is compared with the file's lines as it is.
    let line = &*session.reveal(line)?;
    let regex = pattern
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| fail(&format!("line in {path}"), format!("bad pattern: {e}")))?;
    let state = regular_state(session, path)?;
    let current = match state {
        Some(_) => session.read_regular_file(path)?,
        None => None,
    };
    let text = current
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .into_owned();
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.contains(&line)
        && regex
            .as_ref()
            .is_none_or(|r| lines.iter().filter(|l| r.is_match(l)).all(|l| *l == line))
    {
        return Ok(session.report(&format!("line in {path}"), false));
    }
    let matched = regex
        .as_ref()
        .and_then(|r| lines.iter().position(|l| r.is_match(l)));
    match matched {
        Some(index) => lines[index] = line,
        None => lines.push(line),
    }
    let mut new = lines.join("\n");
    new.push('\n');
    session.show_diff(
        path,
        current.as_ref().map(|_| text.as_str()),
        &new,
        sensitive,
    );
    // The new file keeps the mode and owner of the one it replaces, set through the handle
    // before the rename.
    let keep = !sensitive && !session.holds_secret(&new);
    session.put_file_owned(
        path,
        new.as_bytes(),
        state.map(|s| s.mode),
        state.map(|s| (s.uid, s.gid)),
        state.is_none(),
        keep,
    )?;
    Ok(session.report(&format!("line in {path}"), true))
}

/// Mode and owner of the regular file an edit replaces.
#[derive(Debug, Clone, Copy)]
struct Regular {
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The mode and owner ids of the regular file at `path`, `None` when nothing is there; a link
/// (even to a regular file) or anything else fails: an edit never goes through a link.
fn regular_state(
    session: &HostSession,
    path: &str,
) -> Result<Option<Regular>, crate::exec::session::HostError> {
    let q = quote(path);
    let out = session.probe(&format!(
        "{{ [ -e {q} ] || [ -L {q} ]; }} || exit 3; exec stat -c '%F|%a|%u|%g' -- {q}"
    ))?;
    let op = format!("line in {path}");
    if out.code == 3 {
        return Ok(None);
    }
    let line = out.stdout.trim();
    let fields: Vec<&str> = line.split('|').collect();
    let [kind, mode, uid, gid] = fields[..] else {
        return Err(fail(
            &op,
            format!("cannot stat {path}: {}", out.stderr.trim()),
        ));
    };
    if kind == "symbolic link" {
        return Err(fail(
            &op,
            format!(
                "{path} is a symbolic link: weft edits the file itself, never through a link \
                 (its target could be any file of the host); make {path} a regular file"
            ),
        ));
    }
    if kind != "regular file" && kind != "regular empty file" {
        return Err(fail(&op, format!("{path} is a {kind}, not a file")));
    }
    let number = |text: &str, radix| u32::from_str_radix(text, radix).ok();
    match (number(mode, 8), number(uid, 10), number(gid, 10)) {
        (Some(mode), Some(uid), Some(gid)) => Ok(Some(Regular { mode, uid, gid })),
        _ => Err(fail(&op, format!("cannot read the stat of {path}: {line}"))),
    }
}

/// Makes `path` hold exactly `data`; returns whether anything changed.
pub fn write_file(
    session: &HostSession,
    path: &str,
    data: &[u8],
    mode: Option<u32>,
) -> Result<bool, HostError> {
    let spec = FileSpec {
        content: Some(data.to_vec()),
        mode,
        ..Default::default()
    };
    file(session, path, &spec)
}

/// Renders template `name` with the host's variables, `vars` over them, into `dest`.
pub fn template(
    session: &HostSession,
    name: &str,
    dest: &str,
    vars: Vars,
    file_spec: FileSpec,
) -> Result<bool, HostError> {
    let text = render(session, name, vars)?;
    let spec = FileSpec {
        content: Some(text.into_bytes()),
        ..file_spec
    };
    file(session, dest, &spec)
}

/// Renders template `name` with the host's variables, `vars` over them.
pub fn render(session: &HostSession, name: &str, vars: Vars) -> Result<String, HostError> {
    let host = &session.spec;
    let mut all = host.vars.clone();
    all.insert(
        "host".into(),
        serde_json::json!({
            "name": host.name,
            "address": host.address,
            "roles": host.roles,
        }),
    );
    crate::inventory::merge(&mut all, vars);
    // Facts cost a round trip: read them only for templates that use them.
    if session.templates().mentions(name, "facts") && !all.contains_key("facts") {
        let facts = super::facts::basic(session)?;
        all.insert("facts".into(), serde_json::Value::Object(facts));
    }
    let text = session.templates().render(name, &all)?;
    Ok(session.reveal(&text)?.into_owned())
}

/// Copies a local file or folder (relative to the project) to `remote`; returns whether
/// anything changed.
pub fn upload(session: &HostSession, local: &str, remote: &str) -> Result<bool, HostError> {
    session.not_interrupted(remote)?;
    let source = session.local_path(local);
    let read_error = |source| HostError::LocalRead {
        path: local.to_string(),
        source,
    };
    let meta = std::fs::metadata(&source).map_err(read_error)?;
    if !meta.is_dir() {
        return upload_one(session, &source, remote, file_mode(&meta)).map_err(|e| match e {
            HostError::LocalRead { source, .. } => read_error(source),
            other => other,
        });
    }
    let mut changed = false;
    for entry in WalkDir::new(&source).sort_by_file_name() {
        let entry = entry.map_err(|e| read_error(e.into()))?;
        let rel = entry.path().strip_prefix(&source).unwrap_or(Path::new(""));
        let target = join_remote(remote, rel);
        if entry.file_type().is_dir() {
            changed |= directory(session, &target, None, None, None)?;
        } else if entry.file_type().is_file() {
            let meta = entry.metadata().map_err(|e| read_error(e.into()))?;
            changed |= upload_one(session, entry.path(), &target, file_mode(&meta))?;
        }
    }
    Ok(changed)
}

/// Streams one local file to `remote` unless the host already has the same bytes and mode.
fn upload_one(
    session: &HostSession,
    local: &Path,
    remote: &str,
    mode: u32,
) -> Result<bool, HostError> {
    let read_error = |source| HostError::LocalRead {
        path: local.display().to_string(),
        source,
    };
    let sha256 = session.hashes().sha256(local).map_err(read_error)?;
    let (state, remote_sum) = stat_and_sum(session, remote, true, true)?;
    require_file(state.as_ref(), remote)?;
    let same_mode = state.as_ref().is_some_and(|s| s.mode == mode);
    if same_mode && remote_sum.as_deref() == Some(sha256.as_str()) {
        return Ok(session.report(&format!("file {remote}"), false));
    }
    session.put_local_file(local, remote, mode, state.is_none(), sha256)?;
    session.changed(&format!("file {remote}"));
    Ok(true)
}

fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

fn join_remote(base: &str, rel: &Path) -> String {
    let rel = rel.to_string_lossy();
    if rel.is_empty() {
        base.to_string()
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    }
}

/// Makes the folder `remote` hold exactly the local folder `local`: copies what differs and,
/// with `delete`, removes files the local folder does not have.
pub fn sync(session: &HostSession, local: &str, remote: &str, delete: bool) -> OpResult {
    let mut changed = upload(session, local, remote)?;
    if delete {
        let root = session.local_path(local);
        let out = session.probe(&format!(
            "cd {} 2>/dev/null && find . -type f",
            quote(remote)
        ))?;
        for rel in out.stdout.lines() {
            let rel = rel.trim_start_matches("./");
            if !rel.is_empty() && !root.join(rel).exists() {
                changed |= absent(session, &format!("{}/{rel}", remote.trim_end_matches('/')))?;
            }
        }
    }
    Ok(changed)
}
