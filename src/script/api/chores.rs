//! Methods of `Host` for the chores the stdlib once shelled out for (issue 32): `touch`,
//! `rename`, `copy_tree`, the facts `tree_sum`, `files`, `realpath`, `http`, `git_revision`,
//! and the controller's clock, `utc_stamp`.

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::error::host_error_at;
use super::host::Host;
use super::options;
use super::reveal;
use crate::exec::ops::probes::{self, HttpSpec};
use crate::exec::ops::trees;

/// `YYYYMMDDHHMMSS` of `secs` since 1970, in UTC.
pub fn stamp_of(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::calendar::civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The options of `http` as the probe's request.
fn http_spec(options: Map) -> Result<HttpSpec, Box<EvalAltResult>> {
    let o: options::HttpOptions = options::read(options)?;
    let defaults = HttpSpec::default();
    Ok(HttpSpec {
        timeout: o.timeout.map_or(defaults.timeout, |t| t.0),
        method: o.method.map_or(defaults.method, |m| m.to_ascii_uppercase()),
        headers: o.headers,
    })
}

/// Chores on paths and the facts of folders, as methods of `Host`.
#[export_module]
pub mod chores_api {
    use super::*;

    /// Sets the modification time of `path` to now, making an empty file when nothing is
    /// there, as `touch` does: how the stdlib marks the build it used last, for pruning by
    /// time. A link is touched itself, never followed; a new file is linked in from a private
    /// folder beside it, so nothing planted under its name is written through. Always a change.
    ///
    /// ```rhai
    /// host.touch("/srv/app/builds/" + id);
    /// host.touch("/srv/app/.last-run", #{ always: true });
    /// ```
    #[rhai_fn(name = "touch", return_raw)]
    pub fn touch(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let always = options::read::<options::TouchOptions>(options)?.always;
        let path = reveal::text(&ctx, &host.0, path)?;
        let h = &host.0;
        h.always(always, || h.timed("", || trees::touch(h, &path)))
            .map_err(|e| host_error_at(&ctx, h, e))
    }

    /// Renames `from` to `to` in the same folder, atomically: whatever was at `to` is
    /// replaced in one step (a folder that holds anything is not), and a link at either name
    /// is renamed or replaced itself, never followed. Unchanged when `from` is gone and `to`
    /// is there (done by an earlier run); nothing at either is an error (under `--check`, a
    /// rename that would run: the step that makes `from` did not).
    ///
    /// ```rhai
    /// host.rename("/srv/app/builds/.v2.part", "/srv/app/builds/v2");
    /// host.rename("/srv/app/state.new", "/srv/app/state", #{ always: true });
    /// ```
    #[rhai_fn(name = "rename", return_raw)]
    pub fn rename(
        ctx: NativeCallContext,
        host: &mut Host,
        from: &str,
        to: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let always = options::read::<options::RenameOptions>(options)?.always;
        let from = reveal::text(&ctx, &host.0, from)?;
        let to = reveal::text(&ctx, &host.0, to)?;
        let h = &host.0;
        h.always(always, || h.timed("", || trees::rename(h, &from, &to)))
            .map_err(|e| host_error_at(&ctx, h, e))
    }

    /// Copies what folder `from` holds into folder `to` (made when missing): files, folders
    /// and links with their times and modes, less group and world write and set-id bits, all
    /// owned by the session's user (as root, a user's tree becomes root's); `to` keeps its
    /// own owner and mode, and what else it holds stays. A `to` holding a folder (itself
    /// included) another user owns or can write is refused. Unchanged when every file is in
    /// `to` alike already (`tar --compare`). Both folders are entered name by name, never
    /// through a link another user owns.
    ///
    /// ```rhai
    /// host.copy_tree("/srv/app/current/static", "/srv/app/shared/static");
    /// host.copy_tree("/srv/app/repos/site", "/srv/app/stage/src", #{ exclude: [".git"] });
    /// ```
    #[rhai_fn(name = "copy_tree", return_raw)]
    pub fn copy_tree(
        ctx: NativeCallContext,
        host: &mut Host,
        from: &str,
        to: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let options::CopyTreeOptions { exclude, always } = options::read(options)?;
        let from = reveal::text(&ctx, &host.0, from)?;
        let to = reveal::text(&ctx, &host.0, to)?;
        let h = &host.0;
        h.always(always, || {
            h.timed("", || trees::copy_tree(h, &from, &to, &exclude))
        })
        .map_err(|e| host_error_at(&ctx, h, e))
    }

    /// A SHA-256 over the names and contents of the files under folder `dir` (the
    /// `sha256sum` of `header` then their `sha256sum` lines, by name): equal sums, equal
    /// files, on any machine. `exclude` names are left out at any depth, `exclude_top` ones
    /// only directly in `dir`. `()` when `dir` is not a folder; an error when a file cannot
    /// be read or the walk takes over 10 minutes (never a partial sum). Reads only.
    ///
    /// ```rhai
    /// let sum = host.tree_sum("/srv/app/src");
    /// let sum = host.tree_sum("/srv/app/src", #{ exclude: [".git"] });
    /// let sum = host.tree_sum("/srv/app/src", #{ exclude_top: [".git"], header: "v1\n" });
    /// ```
    #[rhai_fn(name = "tree_sum", return_raw)]
    pub fn tree_sum(
        ctx: NativeCallContext,
        host: &mut Host,
        dir: &str,
        options: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let o = options::read::<options::TreeSumOptions>(options)?;
        let spec = trees::SumSpec {
            exclude: o.exclude,
            exclude_top: o.exclude_top,
            header: o.header,
        };
        let dir = reveal::text(&ctx, &host.0, dir)?;
        let sum =
            trees::tree_sum(&host.0, &dir, &spec).map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(sum.map_or(Dynamic::UNIT, Dynamic::from))
    }

    /// The paths of the regular files under folder `dir`, relative to it, sorted; `[]` when
    /// `dir` is not a folder. Reads only.
    ///
    /// ```rhai
    /// let uploads = host.files("/srv/files/site").len();
    /// let sources = host.files("/srv/app/src", #{ exclude: [".git"] });
    /// ```
    #[rhai_fn(name = "files", return_raw)]
    pub fn files(
        ctx: NativeCallContext,
        host: &mut Host,
        dir: &str,
        options: Map,
    ) -> Result<Array, Box<EvalAltResult>> {
        let exclude = options::read::<options::FilesOptions>(options)?.exclude;
        let dir = reveal::text(&ctx, &host.0, dir)?;
        let names =
            trees::files(&host.0, &dir, &exclude).map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(names.into_iter().map(Dynamic::from).collect())
    }

    /// `path` with every link resolved and no `.` or `..` in it; `()` when it leads nowhere.
    /// Reads only.
    ///
    /// ```rhai
    /// let venv = host.realpath("/srv/app/current/venv");
    /// ```
    #[rhai_fn(name = "realpath", return_raw)]
    pub fn realpath(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let path = reveal::text(&ctx, &host.0, path)?;
        let resolved =
            trees::realpath(&host.0, &path).map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(resolved.map_or(Dynamic::UNIT, Dynamic::from))
    }

    /// The HTTP status `url` answers with, asked from the host with its `curl` (redirects
    /// not followed, no `~/.curlrc`, the URL taken as it is); `0` when nothing answered
    /// within `timeout` (10 seconds by default). `method` is `GET` or `HEAD` only: a probe
    /// runs under `--check` too. `headers` go to curl on its input, never on its command
    /// line, secrets in them revealed there.
    ///
    /// ```rhai
    /// if host.http("http://127.0.0.1/health") != 200 { throw "the site is down"; }
    /// let code = host.http("http://127.0.0.1:5000/v2/", #{ method: "HEAD", timeout: 5 });
    /// ```
    #[rhai_fn(name = "http", return_raw)]
    pub fn http(
        ctx: NativeCallContext,
        host: &mut Host,
        url: &str,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        let spec = http_spec(reveal::map(&ctx, &host.0, options)?)?;
        let url = reveal::text(&ctx, &host.0, url)?;
        probes::http(&host.0, &url, &spec).map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// The git commit the checkout `dir` is in stands at: `#{ commit, short, dirty }`
    /// (`commit`: the full id of `HEAD`; `short`: `git rev-parse --short=8`, longer when 8 digits are ambiguous; `dirty`: files under
    /// `dir` differ from it, or are untracked); `()` when `dir` is in no git checkout with a
    /// commit, or the host has no git. Reads only.
    ///
    /// ```rhai
    /// let rev = host.git_revision("/srv/app/repos/site");
    /// if rev != () { log(`at ${rev.short}`); }
    /// ```
    #[rhai_fn(name = "git_revision", return_raw)]
    pub fn git_revision(
        ctx: NativeCallContext,
        host: &mut Host,
        dir: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let dir = reveal::text(&ctx, &host.0, dir)?;
        let revision =
            probes::git_revision(&host.0, &dir).map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(revision.map_or(Dynamic::UNIT, |r| {
            let mut map = Map::new();
            map.insert("short".into(), r.short.into());
            map.insert("commit".into(), r.commit.into());
            map.insert("dirty".into(), r.dirty.into());
            map.into()
        }))
    }

    /// The controller's clock in UTC as `YYYYMMDDHHMMSS`: one time for every host of a
    /// goal, where `date` on each would differ.
    ///
    /// ```rhai
    /// let id = "v1-r" + utc_stamp();
    /// ```
    #[rhai_fn(name = "utc_stamp")]
    pub fn utc_stamp() -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        stamp_of(secs)
    }
}

/// The functions above whose options may be left out, each registered a second time without
/// its option map: `host.touch(path)` is `host.touch(path, #{})`.
pub fn register_short_forms(module: &mut rhai::Module) {
    short_form!(module, "touch", chores_api::touch(path: &str));
    short_form!(module, "rename", chores_api::rename(from: &str, to: &str));
    short_form!(module, "copy_tree", chores_api::copy_tree(from: &str, to: &str));
    short_form!(module, "tree_sum", chores_api::tree_sum(dir: &str) -> Dynamic);
    short_form!(module, "files", chores_api::files(dir: &str) -> Array);
    short_form!(module, "http", chores_api::http(url: &str) -> i64);
}
