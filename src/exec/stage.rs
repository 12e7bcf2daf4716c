//! A private folder on a host, beside a path weft replaces as root (issue 29): `mktemp -d`
//! makes it under a random name, owned by the login (or become) user with mode 0700, in the
//! target's own folder so that a rename puts what was staged in place. Whoever owns that folder
//! can rename the private one and put a link under its name, so every command that uses it
//! enters it first and checks that it is still the folder weft made (device, inode, owner,
//! mode), then works on names inside it, which nobody else can create or swap.

use crate::exec::session::{HostError, RunOptions};
use crate::shell::quote;

use super::session::HostSession;

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

/// The shell lines that make a private folder in `folder` (whose path may hold links), enter
/// it and check that it is the one made: a link or a folder of someone else's swapped in
/// between `mktemp` and `cd` fails. A set-group-id bit it took from a folder such as Debian's
/// /etc/redis is cleared (through `.`, the folder entered). The folder's path is then in
/// `$weft_stage`, and where the command started in `$weft_from`.
fn make(folder: &str) -> String {
    format!(
        "weft_from=$(pwd) && weft_parent=$(cd -P -- {f} && pwd -P) && \
         weft_stage=$(mktemp -d \"${{weft_parent%/}}/.weft-stage.XXXXXXXXXX\") && \
         cd -P -- \"$weft_stage\" && [ \"$(pwd -P)\" = \"$weft_stage\" ] && \
         [ \"$(stat -c %u .)\" = \"$(id -u)\" ] && chmod u=rwx,go=,-s . && \
         [ \"$(stat -c %a .)\" = 700 ]",
        f = quote(folder)
    )
}

/// `path` as a shell word for a body of `in_one_command`, which runs in the private folder: a
/// relative path is taken from where the command started, as it would be without the stage.
pub fn target_word(path: &str) -> String {
    if path.starts_with('/') {
        quote(path)
    } else {
        format!("\"$weft_from\"/{}", quote(path))
    }
}

/// Runs `body` in a private folder made in `folder` for the time of one command, and removes
/// the folder after it (`body` runs in a subshell, so its `exit` still lets that happen); the
/// command exits with `body`'s status. For a step that stages and places in one go, such as a
/// link.
pub fn in_one_command(folder: &str, body: &str) -> String {
    format!(
        "{make} || {{ echo 'weft: cannot make a private folder in '{f} >&2; exit 1; }}; \
         ( {body}\n ); weft_status=$?; cd / && rm -rf -- \"$weft_stage\"; exit \"$weft_status\"",
        make = make(folder),
        f = quote(folder),
    )
}

/// Runs `command` (a script of weft's own, too long to name in an error) quietly; a non-zero
/// exit fails `op` with what the command printed on its standard error.
pub fn run_step(
    session: &HostSession,
    op: &str,
    command: &str,
) -> Result<crate::transport::ExecOutput, HostError> {
    let options = RunOptions {
        quiet: true,
        fail_on_error: false,
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
    pub fn beside(session: &HostSession, path: &str) -> Result<Self, HostError> {
        let command = format!(
            "{} && printf '%s\\n' \"$weft_stage\" && exec stat -c %d:%i:%u .",
            make(folder_of(path))
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
        session: &HostSession,
        target: &str,
        owner: Option<&str>,
        group: Option<&str>,
        mode: Option<u32>,
    ) -> Result<(), HostError> {
        let mut steps = vec![
            "if [ -L new ] || [ ! -e new ]; then echo 'weft: the load left no file or folder named new' >&2; exit 1; fi"
                .to_string(),
        ];
        let spec = match (owner, group) {
            (Some(o), Some(g)) => Some(format!("{o}:{g}")),
            (Some(o), None) => Some(o.to_string()),
            (None, Some(g)) => Some(format!(":{g}")),
            (None, None) => None,
        };
        if let Some(spec) = spec {
            steps.push(format!("chown -R -- {} new", quote(&spec)));
        }
        if let Some(mode) = mode {
            steps.push(format!("chmod {mode:o} new"));
        }
        let t = quote(target);
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
    pub fn remove(&self, session: &HostSession) {
        let options = RunOptions {
            quiet: true,
            fail_on_error: false,
            always: true,
            ..RunOptions::default()
        };
        let _ = session.run(&format!("rm -rf -- {}", quote(&self.dir)), &options);
    }
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
        let folder = dir.path().display().to_string();
        let script = in_one_command(
            &folder,
            &format!(
                "echo hi > f && pwd -P && echo x > {} && exit 7",
                target_word("out")
            ),
        );
        let from = tempfile::tempdir().expect("tmp");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(from.path())
            .output()
            .expect("sh");
        assert_eq!(out.status.code(), Some(7), "{out:?}");
        let inside = String::from_utf8_lossy(&out.stdout);
        assert!(
            inside.contains(&format!("{folder}/.weft-stage.")),
            "{inside}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        // A relative target is taken from where the command started.
        assert!(from.path().join("out").exists());
    }
}
