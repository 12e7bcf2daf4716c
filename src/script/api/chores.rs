//! Methods of `Host` for the chores the stdlib once shelled out for (issue 32): `touch`,
//! `rename`, `copy_tree`, the facts `tree_sum`, `files`, `realpath`, `http`, `git_revision`,
//! and the controller's clock, `utc_stamp`.

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::error::host_error_at;
use super::host::Host;
use super::options::{self, Options};
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

/// The `exclude` option: names left out at any depth.
fn excludes(opts: &mut Options) -> Result<Vec<String>, Box<EvalAltResult>> {
    let names = opts.strings("exclude")?.unwrap_or_default();
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.contains('/') || n.contains('\0'))
    {
        return Err(format!("exclude: `{bad}` is not a file name (no `/`)").into());
    }
    Ok(names)
}

fn http_spec(options: Map) -> Result<HttpSpec, Box<EvalAltResult>> {
    let mut opts = Options::new(options, options::keys("http"))?;
    let defaults = HttpSpec::default();
    let spec = HttpSpec {
        timeout: opts.seconds("timeout")?.unwrap_or(defaults.timeout),
        method: opts
            .string("method")?
            .unwrap_or(defaults.method)
            .to_ascii_uppercase(),
        headers: opts.strings_map("headers")?.unwrap_or_default(),
    };
    probes::check_method(&spec.method)?;
    if spec.timeout.is_zero() {
        return Err("option `timeout` must be more than 0 seconds".into());
    }
    for (name, value) in &spec.headers {
        let bad = |t: &str| t.contains(['\r', '\n']);
        if name.is_empty() || name.contains(':') || bad(name) || bad(value) {
            return Err(
                format!("headers: `{name}` is not a header name with a one-line value").into(),
            );
        }
    }
    Ok(spec)
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
    /// ```
    #[rhai_fn(name = "touch", return_raw)]
    pub fn touch(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        touch_with(ctx, host, path, Map::new())
    }

    /// `touch` with option `always` (even after Ctrl-C).
    ///
    /// ```rhai
    /// host.touch("/srv/app/.last-run", #{ always: true });
    /// ```
    #[rhai_fn(name = "touch", return_raw)]
    pub fn touch_with(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let always = Options::new(options, options::keys("touch"))?.always()?;
        let path = reveal::text(&ctx, &host.0, path)?;
        let h = &host.0;
        h.always(always, || h.timed("", || trees::touch(h, &path)))
            .map_err(|e| host_error_at(&ctx, h, e))
    }

    /// Renames `from` to `to` in the same folder, atomically: whatever was at `to` is
    /// replaced in one step (a folder that holds anything is not), and a link at either name
    /// is renamed or replaced itself, never followed. Unchanged when `from` is gone and `to`
    /// is there (done by an earlier run); nothing at either is an error.
    ///
    /// ```rhai
    /// host.rename("/srv/app/builds/.v2.part", "/srv/app/builds/v2");
    /// ```
    #[rhai_fn(name = "rename", return_raw)]
    pub fn rename(
        ctx: NativeCallContext,
        host: &mut Host,
        from: &str,
        to: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        rename_with(ctx, host, from, to, Map::new())
    }

    /// `rename` with option `always` (even after Ctrl-C).
    ///
    /// ```rhai
    /// host.rename("/srv/app/state.new", "/srv/app/state", #{ always: true });
    /// ```
    #[rhai_fn(name = "rename", return_raw)]
    pub fn rename_with(
        ctx: NativeCallContext,
        host: &mut Host,
        from: &str,
        to: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let always = Options::new(options, options::keys("rename"))?.always()?;
        let from = reveal::text(&ctx, &host.0, from)?;
        let to = reveal::text(&ctx, &host.0, to)?;
        let h = &host.0;
        h.always(always, || h.timed("", || trees::rename(h, &from, &to)))
            .map_err(|e| host_error_at(&ctx, h, e))
    }

    /// Copies what folder `from` holds into folder `to` (made when missing), as `cp -a
    /// from/. to/`: files, folders and links with their modes, owners and times; what else
    /// `to` holds stays. Unchanged when every file is in `to` alike already (`tar
    /// --compare`). Both folders are entered name by name, never through a link another
    /// user owns.
    ///
    /// ```rhai
    /// host.copy_tree("/srv/app/current/static", "/srv/app/shared/static");
    /// ```
    #[rhai_fn(name = "copy_tree", return_raw)]
    pub fn copy_tree(
        ctx: NativeCallContext,
        host: &mut Host,
        from: &str,
        to: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        copy_tree_with(ctx, host, from, to, Map::new())
    }

    /// `copy_tree` with options: `exclude` (names of files or folders left out at any
    /// depth, such as `[".git"]`) and `always` (even after Ctrl-C).
    ///
    /// ```rhai
    /// host.copy_tree("/srv/app/repos/site", "/srv/app/stage/src", #{ exclude: [".git"] });
    /// ```
    #[rhai_fn(name = "copy_tree", return_raw)]
    pub fn copy_tree_with(
        ctx: NativeCallContext,
        host: &mut Host,
        from: &str,
        to: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let mut opts = Options::new(options, options::keys("copy_tree"))?;
        let always = opts.always()?;
        let exclude = excludes(&mut opts)?;
        let from = reveal::text(&ctx, &host.0, from)?;
        let to = reveal::text(&ctx, &host.0, to)?;
        let h = &host.0;
        h.always(always, || {
            h.timed("", || trees::copy_tree(h, &from, &to, &exclude))
        })
        .map_err(|e| host_error_at(&ctx, h, e))
    }

    /// A SHA-256 over the names and contents of the files under folder `dir` (the
    /// `sha256sum` of their `sha256sum` lines, by name): equal sums, equal files, on any
    /// machine. `()` when `dir` is not a folder. Reads only.
    ///
    /// ```rhai
    /// let sum = host.tree_sum("/srv/app/src");
    /// ```
    #[rhai_fn(name = "tree_sum", return_raw)]
    pub fn tree_sum(
        ctx: NativeCallContext,
        host: &mut Host,
        dir: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        tree_sum_with(ctx, host, dir, Map::new())
    }

    /// `tree_sum` with option `exclude`: names of files or folders left out at any depth.
    ///
    /// ```rhai
    /// let sum = host.tree_sum("/srv/app/src", #{ exclude: [".git"] });
    /// ```
    #[rhai_fn(name = "tree_sum", return_raw)]
    pub fn tree_sum_with(
        ctx: NativeCallContext,
        host: &mut Host,
        dir: &str,
        options: Map,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let exclude = excludes(&mut Options::new(options, options::keys("tree_sum"))?)?;
        let dir = reveal::text(&ctx, &host.0, dir)?;
        let sum = trees::tree_sum(&host.0, &dir, &exclude)
            .map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(sum.map_or(Dynamic::UNIT, Dynamic::from))
    }

    /// The paths of the regular files under folder `dir`, relative to it, sorted; `[]` when
    /// `dir` is not a folder. Reads only.
    ///
    /// ```rhai
    /// let uploads = host.files("/srv/files/site").len();
    /// ```
    #[rhai_fn(name = "files", return_raw)]
    pub fn files(
        ctx: NativeCallContext,
        host: &mut Host,
        dir: &str,
    ) -> Result<Array, Box<EvalAltResult>> {
        files_with(ctx, host, dir, Map::new())
    }

    /// `files` with option `exclude`: names of files or folders left out at any depth.
    ///
    /// ```rhai
    /// let sources = host.files("/srv/app/src", #{ exclude: [".git"] });
    /// ```
    #[rhai_fn(name = "files", return_raw)]
    pub fn files_with(
        ctx: NativeCallContext,
        host: &mut Host,
        dir: &str,
        options: Map,
    ) -> Result<Array, Box<EvalAltResult>> {
        let exclude = excludes(&mut Options::new(options, options::keys("files"))?)?;
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
    /// not followed); `0` when nothing answered within 10 seconds. Reads only: it runs under
    /// `--check` too.
    ///
    /// ```rhai
    /// if host.http("http://127.0.0.1/health") != 200 { throw "the site is down"; }
    /// ```
    #[rhai_fn(name = "http", return_raw)]
    pub fn http(
        ctx: NativeCallContext,
        host: &mut Host,
        url: &str,
    ) -> Result<i64, Box<EvalAltResult>> {
        http_with(ctx, host, url, Map::new())
    }

    /// `http` with options: `timeout` (seconds for the whole request, default 10), `method`
    /// (default `"GET"`; `"HEAD"` asks for headers only) and `headers` (a map of names to
    /// values).
    ///
    /// ```rhai
    /// let code = host.http("http://127.0.0.1:5000/v2/", #{ method: "HEAD", timeout: 5 });
    /// ```
    #[rhai_fn(name = "http", return_raw)]
    pub fn http_with(
        ctx: NativeCallContext,
        host: &mut Host,
        url: &str,
        options: Map,
    ) -> Result<i64, Box<EvalAltResult>> {
        let spec = http_spec(options)?;
        let url = reveal::text(&ctx, &host.0, url)?;
        probes::http(&host.0, &url, &spec).map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// The git commit the checkout `dir` is in stands at: `#{ commit, short, dirty }`
    /// (`commit`: the full id of `HEAD`; `short`: its first 8 digits; `dirty`: files under
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
            map.insert(
                "short".into(),
                r.commit.chars().take(8).collect::<String>().into(),
            );
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
