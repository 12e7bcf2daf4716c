//! Methods of `Host` that wait on others or read paths: named locks, `wait_until`, and the
//! facts `exists`, `readlink`, `list`, `checksum`, `verify`.

use rhai::plugin::*;
use std::sync::Arc;

use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map};

use super::error::host_error_at;
use super::global::ScriptContext;
use super::host::Host;
use super::options::{self, ListOrder};
use super::reveal;
use super::ApiResult;
use crate::exec::ops::locks::{self, Holder, LockSpec, Owner};
use crate::exec::ops::paths::{self, Order};
use crate::exec::ops::waits::{self, WaitSpec};
use crate::exec::session::HostSession;

/// This run as a lock holder: `env().runner` and `env().run_id`, and `what` it locks for.
fn holder(ctx: &NativeCallContext, what: String) -> Holder {
    let (runner, run) = ctx
        .tag()
        .and_then(|tag| tag.read_lock::<ScriptContext>().map(|c| c.env.clone()))
        .map(|env| (env.runner.clone(), env.run_id.clone()))
        .unwrap_or_default();
    Holder { runner, run, what }
}

/// What `lock_owner` returns.
fn owner_map(owner: &Owner, ours: bool) -> Map {
    let mut map = Map::new();
    map.insert("runner".into(), owner.runner.clone().into());
    map.insert("run".into(), owner.run.clone().into());
    map.insert("what".into(), owner.what.clone().into());
    let int = |v: Option<i64>| v.map_or(Dynamic::UNIT, Dynamic::from_int);
    map.insert("since".into(), int(owner.since));
    map.insert(
        "age".into(),
        int(owner
            .age
            .map(|a| i64::try_from(a.as_secs()).unwrap_or(i64::MAX))),
    );
    map.insert("ours".into(), ours.into());
    map.insert("text".into(), owner.describe().into());
    map
}

/// Calls a wait's check: with the host as its argument when it takes one (`|h| ...`), else
/// with none. The `host` that is waiting is busy for the whole wait, so a check that captured
/// it gets an error saying to take the host as its argument instead.
fn call_check(
    ctx: &NativeCallContext,
    check: &FnPtr,
    host: &Arc<HostSession>,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let with_host = check.call_within_context::<Dynamic>(ctx, (Host(host.clone()),));
    let result = match with_host {
        // Only the check itself missing at that arity: a function it calls may be missing too.
        Err(e)
            if matches!(&*e, EvalAltResult::ErrorFunctionNotFound(sig, _)
                if sig.starts_with(check.fn_name())) =>
        {
            check.call_within_context::<Dynamic>(ctx, ())
        }
        other => other,
    };
    result.map_err(|e| {
        if is_data_race(&e) {
            "wait_until: the check calls the `host` that is waiting, which is busy until the wait ends; \
             take the host as the check's argument: `host.wait_until(|h| h.service_running(\"nginx\"))`"
                .into()
        } else {
            e
        }
    })
}

/// Whether `e`, or the error inside a function call it reports, is rhai's data race.
fn is_data_race(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorDataRace(..) => true,
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => is_data_race(inner),
        _ => false,
    }
}

/// The command of `wait_until`: a string, or an array of words each quoted.
fn command_of(value: &Dynamic) -> ApiResult<Option<String>> {
    if let Some(text) = value.clone().try_cast::<String>() {
        return Ok(Some(text));
    }
    if let Some(words) = value.clone().try_cast::<Array>() {
        let words = options::strings(words, "the words of the command")?;
        if words.is_empty() {
            return Err("wait_until: the argument list is empty".into());
        }
        return Ok(Some(crate::shell::join(&words)));
    }
    Ok(None)
}

fn wait_spec(options: Map) -> ApiResult<WaitSpec> {
    let o: options::WaitUntilOptions = options::read(options)?;
    let defaults = WaitSpec::default();
    let spec = WaitSpec {
        timeout: o.timeout.map_or(defaults.timeout, |t| t.0),
        interval: o.interval.map_or(defaults.interval, |i| i.0),
        allow_fail: o.allow_fail,
        check_safe: o.check_safe,
    };
    if spec.interval.is_zero() {
        return Err("wait_until: option `interval` must be more than 0 seconds".into());
    }
    Ok(spec)
}

/// Locks, waits and the facts of paths, as methods of `Host`.
#[export_module]
pub mod waits_api {
    use super::*;

    /// Takes the named lock `name` on the host for this run; `true` when taken now, `false`
    /// when this run holds it already. Held by another run, it fails at once (or after
    /// `wait`) naming the holder (`user@host:pid` of its controller), what it took it for and
    /// how long ago. Locks live in a folder only the login user can enter
    /// (`/var/lib/weft/locks` for root, else `~/.local/state/weft/locks`, mode 0700); each is
    /// made with `mkdir`, so of two runs exactly one gets it. A lock outlives a killed run:
    /// `host.unlock(name, #{ force: true })` breaks it. Under `--check` no lock is taken; it
    /// says who holds it, if anyone.
    ///
    /// ```rhai
    /// host.lock("backup");
    /// host.lock("deploy", #{ what: "site_deploy", wait: 60 });
    /// ```
    #[rhai_fn(name = "lock", return_raw)]
    pub fn lock(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let o: options::LockOptions = options::read(options)?;
        let what = o.what.unwrap_or_default();
        let spec = LockSpec {
            wait: o.wait.map(|w| w.0).filter(|w| !w.is_zero()),
            force: o.force,
        };
        locks::check_name(name)?;
        let holder = holder(&ctx, what);
        locks::lock(&host.0, name, &holder, &spec).map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Releases lock `name` when this run holds it; `true` when it did. A lock another run
    /// holds is left alone (and said so), unless `force`: a run whose lock was broken never
    /// removes the lock of the run that broke it. Runs even after Ctrl-C, as cleanup.
    ///
    /// ```rhai
    /// host.unlock("backup");
    /// host.unlock("backup", #{ force: true });
    /// ```
    #[rhai_fn(name = "unlock", return_raw)]
    pub fn unlock(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let force = options::read::<options::UnlockOptions>(options)?.force;
        locks::check_name(name)?;
        let holder = holder(&ctx, String::new());
        locks::unlock(&host.0, name, &holder, force).map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Who holds lock `name`: `()` when nobody does, else `#{ runner, run, what, since, age,
    /// ours, text }` (`since`: the host's clock when it was taken, in unix seconds; `age`: in
    /// seconds; `ours`: this run holds it; `text`: all of it, for messages). Reads only.
    ///
    /// ```rhai
    /// let held = host.lock_owner("deploy");
    /// if held != () && !held.ours { log(`deploy is locked by ${held.text}`); }
    /// ```
    #[rhai_fn(name = "lock_owner", return_raw)]
    pub fn lock_owner(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        locks::check_name(name)?;
        let holder = holder(&ctx, String::new());
        let owner = host
            .0
            .always(true, || locks::owner(&host.0, name))
            .map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(owner.map_or(Dynamic::UNIT, |o| {
            let ours = o.is(&holder);
            owner_map(&o, ours).into()
        }))
    }

    /// Runs `check` again until it succeeds: a shell command (a string, or an array of
    /// words, each quoted) that exits 0, or a function that returns `true` (given the host
    /// when it takes an argument, `|h| ...`), every `interval`
    /// for at most `timeout`. Returns `true` once it succeeded. The time is up: the goal fails naming what was waited for and how long.
    /// The pauses are on the controller, and Ctrl-C ends them at once. Under `--check` it
    /// waits for nothing (without `check_safe`) and returns `true`.
    ///
    /// ```rhai
    /// host.wait_until("curl -fsS -o /dev/null http://127.0.0.1/");
    /// host.wait_until(["pg_isready", "-q"], #{ timeout: 30, interval: 0.5 });
    /// // A function that asks the host takes it as its argument.
    /// host.wait_until(|h| h.service_running("nginx"), #{ timeout: 10 });
    /// ```
    #[rhai_fn(name = "wait_until", return_raw)]
    pub fn wait_until(
        ctx: NativeCallContext,
        host: &mut Host,
        check: Dynamic,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let spec = wait_spec(options)?;
        let h = host.0.clone();
        let check = reveal::value(&ctx, &h, check)?;
        if let Some(command) = command_of(&check)? {
            return waits::command(&h, &command, &spec).map_err(|e| host_error_at(&ctx, &h, e));
        }
        let Some(probe) = check.clone().try_cast::<FnPtr>() else {
            return Err(format!(
                "wait_until: the check must be a command (a string or an array) or a function, not {}",
                check.type_name()
            )
            .into());
        };
        let what = format!("`{}` returns true", probe.fn_name());
        waits::wait_until(
            &h,
            &what,
            &spec,
            |_| {
                let result = call_check(&ctx, &probe, &h)?;
                result.as_bool().map_err(|_| {
                    format!(
                        "wait_until: the check must return true or false, not {}",
                        result.type_name()
                    )
                    .into()
                })
            },
            |e| host_error_at(&ctx, &h, e),
        )
    }

    /// Whether anything is at `path` on the host: a file, a folder, or a link (even one whose
    /// target is gone); with `kind` `"file"` or `"folder"`, whether a regular file or a folder
    /// is (links followed, as `test -f` / `test -d`). Reads only.
    ///
    /// ```rhai
    /// if !host.exists("/etc/app.env") { log("no environment yet"); }
    /// if host.exists("/srv/app/static", #{ kind: "folder" }) { log("static files"); }
    /// ```
    #[rhai_fn(name = "exists", return_raw)]
    pub fn exists(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let o: options::ExistsOptions = options::read(options)?;
        let path = reveal::text(&ctx, &host.0, path)?;
        match o.kind {
            None => paths::exists(&host.0, &path),
            Some(kind) => paths::is_kind(&host.0, &path, kind == options::PathKind::Folder),
        }
        .map_err(|e| host_error_at(&ctx, &host.0, e))
    }

    /// Where the link at `path` points, as it was made (not resolved); `()` when `path` is
    /// not a link, or missing. Reads only.
    ///
    /// ```rhai
    /// let active = host.readlink("/srv/app/current");
    /// ```
    #[rhai_fn(name = "readlink", return_raw)]
    pub fn readlink(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let target = paths::readlink(&host.0, &reveal::text(&ctx, &host.0, path)?)
            .map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(target.map_or(Dynamic::UNIT, Dynamic::from))
    }

    /// The names in folder `dir` (hidden ones too), sorted by name (or `order`); `[]` when
    /// `dir` does not exist; a file or anything else that is not a folder fails the goal.
    /// Reads only.
    ///
    /// ```rhai
    /// for name in host.list("/etc/nginx/sites-enabled") { log(name); }
    /// let oldest_first = host.list("/srv/app/builds", #{ order: "time" });
    /// ```
    #[rhai_fn(name = "list", return_raw)]
    pub fn list(
        ctx: NativeCallContext,
        host: &mut Host,
        dir: &str,
        options: Map,
    ) -> Result<Array, Box<EvalAltResult>> {
        let o: options::ListOptions = options::read(options)?;
        let order = match o.order {
            ListOrder::Name => Order::Name,
            ListOrder::Time => Order::Time,
        };
        let names = paths::list(&host.0, &reveal::text(&ctx, &host.0, dir)?, order)
            .map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(names.into_iter().map(Dynamic::from).collect())
    }

    /// The SHA-256 of the file at `path` on the host, in lowercase hex; `()` when nothing is
    /// there. A folder, a link or anything else but a regular file fails the goal. Reads only.
    ///
    /// ```rhai
    /// let sum = host.checksum("/srv/app/dist/app.tar.gz");
    /// ```
    #[rhai_fn(name = "checksum", return_raw)]
    pub fn checksum(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let sum = paths::checksum(&host.0, &reveal::text(&ctx, &host.0, path)?)
            .map_err(|e| host_error_at(&ctx, &host.0, e))?;
        Ok(sum.map_or(Dynamic::UNIT, Dynamic::from))
    }

    /// Whether the file at `path` has the SHA-256 `sha256` (64 hex digits, any case):
    /// `false` when it differs or the file is missing, so a script decides what a mismatch
    /// means. A `sha256` that is not one, or a `path` that is not a regular file, fails the
    /// goal. Reads only.
    ///
    /// ```rhai
    /// if !host.verify("/tmp/app.tar.gz", sum) { throw "the copy is corrupt"; }
    /// ```
    #[rhai_fn(name = "verify", return_raw)]
    pub fn verify(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
        sha256: &str,
    ) -> Result<bool, Box<EvalAltResult>> {
        paths::sha256_text(sha256).map_err(|why| format!("verify: {why}"))?;
        let path = reveal::text(&ctx, &host.0, path)?;
        paths::verify(&host.0, &path, sha256).map_err(|e| host_error_at(&ctx, &host.0, e))
    }
}

/// The functions above whose options may be left out, each registered a second time without
/// its option map: `host.lock(name)` is `host.lock(name, #{})`.
pub fn register_short_forms(module: &mut rhai::Module) {
    short_form!(module, "lock", waits_api::lock(name: &str));
    short_form!(module, "unlock", waits_api::unlock(name: &str));
    short_form!(module, "list", waits_api::list(dir: &str) -> Array);
    short_form!(module, "exists", waits_api::exists(path: &str));
    short_form!(module, "wait_until", waits_api::wait_until(check: Dynamic));
}
