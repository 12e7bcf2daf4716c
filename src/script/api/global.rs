//! Global functions: quoting, logging and the env a goal runs in.

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, EvalAltResult, Map, NativeCallContext};

use super::host::Host;

use crate::config::secret::SecretRef;
use crate::exec::output::Output;

/// What global functions know about the goal call they serve; the engine's tag.
#[derive(Clone)]
pub struct ScriptContext {
    /// The prefix of `log` lines: the host's name, or `controller`.
    pub prefix: String,
    /// Where `log` goes.
    pub output: Arc<Output>,
    /// The env, shared by every host of the run: `env()` makes its map when called, so a host
    /// in flight holds no copy of the run's host list.
    pub env: Arc<crate::exec::goals::EnvInfo>,
    /// Env-level actions for controller goals.
    pub orchestrator: Option<Arc<dyn crate::exec::orchestrator::Orchestrator>>,
    /// This machine, for controller goals: builds and other local work.
    pub controller: Option<crate::script::Host>,
    /// The project folder.
    pub root: std::path::PathBuf,
}

/// What `env()` returns.
fn env_map(env: &crate::exec::goals::EnvInfo) -> Map {
    let mut map = Map::new();
    map.insert("name".into(), env.name.clone().into());
    map.insert(
        "vars".into(),
        super::to_dynamic(&serde_json::Value::Object(env.vars.clone())),
    );
    let hosts: Array = env.hosts.iter().cloned().map(Dynamic::from).collect();
    map.insert("hosts".into(), hosts.into());
    let roles: Map = env
        .roles
        .iter()
        .map(|(role, members)| {
            let members: Array = members.iter().cloned().map(Dynamic::from).collect();
            (role.as_str().into(), Dynamic::from_array(members))
        })
        .collect();
    map.insert("roles".into(), roles.into());
    let addresses: Map = env
        .addresses
        .iter()
        .map(|(name, bare)| (name.as_str().into(), Dynamic::from(bare.clone())))
        .collect();
    map.insert("addresses".into(), addresses.into());
    map.insert("check".into(), env.check.into());
    map.insert("break_lock".into(), env.break_lock.into());
    map.insert("rebuild".into(), env.rebuild.into());
    map.insert("scrub".into(), env.scrub.into());
    map.insert("runner".into(), env.runner.clone().into());
    map.insert("run_id".into(), env.run_id.clone().into());
    map.insert("weft_version".into(), env!("CARGO_PKG_VERSION").into());
    map
}

/// The secret `reference` stands for, masked from now on in the goal's output.
fn resolve_secret(
    ctx: &NativeCallContext,
    function: &str,
    reference: SecretRef,
) -> Result<String, Box<rhai::EvalAltResult>> {
    let context = context(ctx);
    let root = context.as_ref().map(|c| c.root.clone()).unwrap_or_default();
    let env = context
        .as_ref()
        .map(|c| c.env.name.clone())
        .unwrap_or_default();
    let value = reference
        .resolve(&root, &env)
        .map_err(|(message, help)| format!("{function}: {message} ({help})"))?;
    if let Some(c) = context {
        c.output.add_secret(&value);
    }
    Ok(value)
}

fn context(ctx: &NativeCallContext) -> Option<ScriptContext> {
    ctx.tag()?.read_lock::<ScriptContext>().map(|c| c.clone())
}

/// `value` with the secrets of weft.toml read on first use put in (read now, masked from now
/// on), for the functions that have no host to ask (`script::api::reveal` for those that
/// have): what `quote` quotes is the value, never its stand-in. None is read after Ctrl-C,
/// and Ctrl-C ends a read under way.
fn revealed(ctx: &NativeCallContext, value: &str) -> Result<String, Box<EvalAltResult>> {
    if let Some(reason) = crate::config::secret::find_missing(value) {
        return Err(reason.into());
    }
    if !crate::config::secret::has_stand_in(value.as_bytes()) {
        return Ok(value.to_string());
    }
    let interrupted =
        || -> Box<EvalAltResult> { "interrupted while a secret of weft.toml was read".into() };
    if crate::exec::interrupt::any_interrupted() {
        return Err(interrupted());
    }
    let stop = crate::exec::interrupt::cancel_now();
    let stop = stop.as_ref().map(|s| s as &dyn crate::config::secret::Stop);
    let (value, read) = crate::config::secret::reveal(value, stop).map_err(|reason| {
        if crate::exec::interrupt::any_interrupted() {
            interrupted()
        } else {
            reason.into()
        }
    })?;
    if let Some(c) = context(ctx) {
        for secret in &read {
            c.output.add_secret(secret);
        }
    }
    Ok(value.into_owned())
}

/// Global functions available to every script.
#[export_module]
pub mod global_api {
    use super::*;

    /// Quotes a string for the shell, so it reaches a command as exactly one argument.
    ///
    /// ```rhai
    /// host.run("ls -l " + quote(dir));
    /// ```
    #[rhai_fn(name = "quote", return_raw)]
    pub fn quote(ctx: NativeCallContext, arg: &str) -> Result<String, Box<EvalAltResult>> {
        Ok(crate::shell::quote(&revealed(&ctx, arg)?))
    }

    /// Quotes every item of an array and joins them with spaces into one command line.
    ///
    /// ```rhai
    /// let cmd = quote(["tar", "-xzf", archive, "-C", dest]);
    /// ```
    #[rhai_fn(name = "quote", return_raw)]
    pub fn quote_all(ctx: NativeCallContext, args: Array) -> Result<String, Box<EvalAltResult>> {
        let words = args
            .into_iter()
            .map(|a| revealed(&ctx, &a.to_string()))
            .collect::<Result<Vec<String>, _>>()?;
        Ok(crate::shell::join(&words))
    }

    /// The SHA-256 of `text` (its UTF-8 bytes), in lowercase hex, computed here: for ids
    /// and fingerprints of what a script assembled, without a command on a host.
    ///
    /// ```rhai
    /// let key = sha256(settings_text).sub_string(0, 12);
    /// ```
    #[rhai_fn(name = "sha256")]
    pub fn sha256(text: &str) -> String {
        crate::transport::sha256_bytes(text.as_bytes())
    }

    /// Prints a message under the current host's prefix (or `controller`).
    ///
    /// ```rhai
    /// log(`deploying ${version}`);
    /// ```
    #[rhai_fn(name = "log")]
    pub fn log(ctx: NativeCallContext, message: &str) {
        match context(&ctx) {
            Some(c) => c.output.log(&c.prefix, message),
            None => crate::logging::note(message),
        }
    }

    /// Marks a value as secret and returns it: from now on it is shown as `********` in live
    /// output, `--json`, diffs and errors. A secret of weft.toml that could not be resolved
    /// (`{ env = "TOKEN" }` with `TOKEN` unset) fails here, saying why. A `{ command = [..] }`
    /// or `{ aws_secret = .. }` not read yet is read here: until a call hands it to weft (a
    /// host's function, `quote`, `secret`), a goal holds a stand-in, which its length, a hash
    /// or a comparison in the script would see.
    ///
    /// ```rhai
    /// let token = secret(env().vars.api_token);
    /// ```
    #[rhai_fn(name = "secret", return_raw)]
    pub fn secret(ctx: NativeCallContext, value: &str) -> Result<String, Box<EvalAltResult>> {
        let value = revealed(&ctx, value)?;
        if let Some(c) = context(&ctx) {
            c.output.add_secret(&value);
        }
        Ok(value)
    }

    /// The value of the environment variable `name` of the weft process, as a secret: shown as
    /// `********` in all output. A variable that is not set stops the goal.
    ///
    /// ```rhai
    /// let token = secret_env("DEPLOY_TOKEN");
    /// ```
    #[rhai_fn(name = "secret_env", return_raw)]
    pub fn secret_env(ctx: NativeCallContext, name: &str) -> Result<String, Box<EvalAltResult>> {
        resolve_secret(&ctx, "secret_env", SecretRef::Env(name.to_string()))
    }

    /// The content of the file `path` on this machine (without its final newline), as a
    /// secret: shown as `********` in all output. `~` is the home folder; a relative path is
    /// taken from the project folder. A file that cannot be read stops the goal.
    ///
    /// ```rhai
    /// let token = secret_file("~/.config/weft/token");
    /// ```
    #[rhai_fn(name = "secret_file", return_raw)]
    pub fn secret_file(ctx: NativeCallContext, path: &str) -> Result<String, Box<EvalAltResult>> {
        resolve_secret(&ctx, "secret_file", SecretRef::File(path.to_string()))
    }

    /// Checks the dump `path` of this machine (relative paths start at the project) against
    /// its `.sha256` and returns `#{ path, bytes, sha256 }`; a missing, corrupt or truncated
    /// dump stops the goal. Verify every file of a backup before loading any.
    ///
    /// ```rhai
    /// let d = verify_dump("backups/prod/20260101T000000Z/redis.rdb.gz");
    /// ```
    #[rhai_fn(name = "verify_dump", return_raw)]
    pub fn verify_dump(ctx: NativeCallContext, path: &str) -> Result<Map, Box<EvalAltResult>> {
        let root = context(&ctx).map(|c| c.root).unwrap_or_default();
        let dumped = crate::exec::dump::verify(&root.join(path)).map_err(|e| {
            crate::script::api::error::controller_error(crate::exec::session::HostError::Dump(e))
        })?;
        Ok(crate::script::api::host::dumped_map(&dumped))
    }

    /// The names in folder `dir` of this machine (relative paths start at the project),
    /// sorted, without hidden ones (a dump being written has a hidden name); `[]` when the
    /// folder does not exist.
    ///
    /// ```rhai
    /// for name in list_local("backups/prod") { log(name); }
    /// ```
    #[rhai_fn(name = "list_local", return_raw)]
    pub fn list_local(ctx: NativeCallContext, dir: &str) -> Result<Array, Box<EvalAltResult>> {
        let root = context(&ctx).map(|c| c.root).unwrap_or_default();
        let entries = match std::fs::read_dir(root.join(dir)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Array::new()),
            Err(err) => return Err(format!("list_local: cannot read `{dir}`: {err}").into()),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names.into_iter().map(Into::into).collect())
    }

    /// The env the goal runs in (weft's env from `weft.toml`, not the process environment:
    /// see `secret_env` for that): `#{ name, vars, hosts, roles, addresses, check, break_lock,
    /// rebuild, scrub, runner, run_id, weft_version }`, where `hosts` lists the selected host names,
    /// `roles` maps each role to its hosts, `addresses` maps every host of the env to its bare
    /// address (no user or port), `check` is `true` under `--check`, `break_lock` under
    /// `--break-lock`, `rebuild` under `--rebuild`, `scrub` under `--scrub`, `runner` names
    /// this run (`user@host:pid`) for lock owners, `run_id` tells it from an earlier process
    /// given the same pid, and `weft_version` is weft's version.
    ///
    /// ```rhai
    /// if env().name == "prod" { log("careful"); }
    /// ```
    #[rhai_fn(name = "env")]
    pub fn env(ctx: NativeCallContext) -> Map {
        context(&ctx).map(|c| env_map(&c.env)).unwrap_or_default()
    }

    /// This machine as a host, for controller goals: commands run in the project folder with
    /// the local connector, and the env's vars apply. Builds run here.
    ///
    /// ```rhai
    /// let me = controller();
    /// me.run(["git", "-C", "app", "rev-parse", "HEAD"]);
    /// ```
    #[rhai_fn(name = "controller", return_raw)]
    pub fn controller(ctx: NativeCallContext) -> Result<Host, Box<EvalAltResult>> {
        context(&ctx).and_then(|c| c.controller).ok_or_else(|| {
            "controller() is only available to controller goals (goals without a host)".into()
        })
    }
}
