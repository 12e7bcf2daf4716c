//! Env-level functions for controller goals (goals without a `host`): machines, and other goals.

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};

use super::error::controller_error_at;
use super::global::ScriptContext;
use super::options;
use crate::exec::orchestrator::{MachineInfo, Orchestrator};

/// The env actions, for a controller goal; elsewhere an error that says where `function` may
/// be called.
fn orchestrator(
    ctx: &NativeCallContext,
    function: &str,
) -> Result<Arc<dyn Orchestrator>, Box<EvalAltResult>> {
    let context = ctx
        .tag()
        .and_then(|t| t.read_lock::<ScriptContext>().map(|c| c.clone()));
    match context {
        Some(ScriptContext {
            orchestrator: Some(orchestrator),
            controller: Some(_),
            ..
        }) => Ok(orchestrator),
        Some(ScriptContext {
            controller: None, ..
        }) => Err(format!(
            "{function}() acts on the whole env: call it from a controller goal (a goal without \
             a `host` parameter), not from a goal that runs once per host"
        )
        .into()),
        _ => Err(format!("{function}() is available to goals run by `weft run`").into()),
    }
}

/// The env actions for any goal of a `weft run`, host goals too: what `virtual_ip` needs.
fn env_actions(
    ctx: &NativeCallContext,
    function: &str,
) -> Result<Arc<dyn Orchestrator>, Box<EvalAltResult>> {
    ctx.tag()
        .and_then(|t| {
            t.read_lock::<ScriptContext>()
                .and_then(|c| c.orchestrator.clone())
        })
        .ok_or_else(|| format!("{function}() is available to goals run by `weft run`").into())
}

fn machine_map(m: MachineInfo) -> Dynamic {
    let mut map = Map::new();
    map.insert("name".into(), m.name.into());
    map.insert("role".into(), m.role.into());
    map.insert("ordinal".into(), Dynamic::from_int(m.ordinal.into()));
    map.insert("state".into(), m.state.into());
    map.insert("address".into(), m.address.into());
    map.insert("id".into(), m.id.into());
    map.into()
}

/// Env-level functions.
#[export_module]
pub mod cloud_api {
    use super::*;

    /// The env's machines: `[#{ name, role, ordinal, state, address, id }]`.
    ///
    /// ```rhai
    /// for m in machines() { log(`${m.name} is ${m.state}`); }
    /// ```
    #[rhai_fn(name = "machines", return_raw)]
    pub fn machines(ctx: NativeCallContext) -> Result<Array, Box<EvalAltResult>> {
        let list = orchestrator(&ctx, "machines")?.machines()?;
        Ok(list.into_iter().map(machine_map).collect())
    }

    /// Asks the person running weft whether to go on with `question` (about the strings
    /// `items`, listed under it), once per invocation: the first answer holds for every later
    /// question, of any goal and host; `--yes` answers yes. Anything but yes
    /// stops the goal with an error saying nothing was done, and weft exits 2. Under `--check`
    /// nothing is asked.
    ///
    /// ```rhai
    /// confirm(`replace the data of env ${env().name}?`, ["postgres", "redis"]);
    /// ```
    #[rhai_fn(name = "confirm", return_raw)]
    pub fn confirm(
        ctx: NativeCallContext,
        question: &str,
        items: Array,
    ) -> Result<(), Box<EvalAltResult>> {
        // Any goal may ask, also one running on many hosts at once: the answer is shared.
        let context = ctx
            .tag()
            .and_then(|t| t.read_lock::<ScriptContext>().map(|c| c.clone()));
        let Some(context) = context else {
            return Err("confirm() is available to goals run by `weft run`".into());
        };
        if context.env.check {
            return Ok(());
        }
        let orchestrator = context
            .orchestrator
            .ok_or("confirm() is available to goals run by `weft run`")?;
        let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
        Ok(orchestrator.confirm(question, &items)?)
    }

    /// Makes `count` new machines of `role` (after the highest ordinal), waits for SSH and runs
    /// `<role>_provision` on them; returns them.
    ///
    /// ```rhai
    /// create_machines("web", 2);
    /// ```
    #[rhai_fn(name = "create_machines", return_raw)]
    pub fn create_machines(
        ctx: NativeCallContext,
        role: &str,
        count: i64,
    ) -> Result<Array, Box<EvalAltResult>> {
        let count =
            u32::try_from(count).map_err(|_| format!("create_machines: bad count {count}"))?;
        let made = orchestrator(&ctx, "create_machines")?.create(role, count)?;
        Ok(made.into_iter().map(machine_map).collect())
    }

    /// Terminates the machine `name` and deletes its disk. weft first asks to confirm, naming
    /// the env and the machine (once per run; `weft run --yes` skips it); under `--check` it
    /// only reports what it would terminate.
    ///
    /// ```rhai
    /// terminate_machine("web-1");
    /// ```
    #[rhai_fn(name = "terminate_machine", return_raw)]
    pub fn terminate_machine(ctx: NativeCallContext, name: &str) -> Result<(), Box<EvalAltResult>> {
        Ok(orchestrator(&ctx, "terminate_machine")?.terminate(&[name.to_string()])?)
    }

    /// Terminates the machines `names` and deletes their disks, after one confirmation that
    /// names the env and every machine (`weft run --yes` skips it); under `--check` it only
    /// reports what it would terminate.
    ///
    /// ```rhai
    /// terminate_machines(machines().map(|m| m.name));
    /// ```
    #[rhai_fn(name = "terminate_machines", return_raw)]
    pub fn terminate_machines(
        ctx: NativeCallContext,
        names: Array,
    ) -> Result<(), Box<EvalAltResult>> {
        let names = options::strings(names, "machine names")?;
        Ok(orchestrator(&ctx, "terminate_machines")?.terminate(&names)?)
    }

    /// The env's machine spec from weft.toml: `#{ role: #{ count, min } }`.
    ///
    /// ```rhai
    /// let web = env_spec().web.count;
    /// ```
    #[rhai_fn(name = "env_spec", return_raw)]
    pub fn env_spec(ctx: NativeCallContext) -> Result<Map, Box<EvalAltResult>> {
        let mut out = Map::new();
        for role in orchestrator(&ctx, "env_spec")?.spec() {
            let mut entry = Map::new();
            entry.insert("count".into(), Dynamic::from_int(role.count.into()));
            entry.insert("min".into(), Dynamic::from_int(role.min.into()));
            out.insert(role.role.as_str().into(), entry.into());
        }
        Ok(out)
    }

    /// Whether a goal of that name exists.
    ///
    /// ```rhai
    /// if goal_exists("hello_deploy") { run_goal("hello_deploy", ["v1"]); }
    /// ```
    #[rhai_fn(name = "goal_exists", return_raw)]
    pub fn goal_exists(ctx: NativeCallContext, goal: &str) -> Result<bool, Box<EvalAltResult>> {
        Ok(orchestrator(&ctx, "goal_exists")?.goal_exists(goal))
    }

    /// Runs another goal on the env's current hosts; `true` once it succeeded on every one.
    /// A failure on any host throws an `OpError` (`err.kind == "goal"`) at the call, as a
    /// failed operation does; each host's failure is in the run's report.
    ///
    /// ```rhai
    /// run_goal("nginx_reload", []);
    /// ```
    #[rhai_fn(name = "run_goal", return_raw)]
    pub fn run_goal(
        ctx: NativeCallContext,
        goal: &str,
        args: Array,
    ) -> Result<bool, Box<EvalAltResult>> {
        run_goal_on(ctx, goal, args, Map::new())
    }

    /// Runs another goal on the env's current hosts, or on those `roles` and `hosts` select
    /// (as `-r` and `-H` do). `true` once it succeeded on every one; a failure throws an
    /// `OpError` (`err.kind == "goal"`, or `interrupted` after Ctrl-C), or with `allow_fail`
    /// returns `false`.
    ///
    /// ```rhai
    /// run_goal("hello_activate", [id], #{ roles: ["app"] });
    /// if !run_goal("app_release", [], #{ hosts: [locker], allow_fail: true }) { log("still locked"); }
    /// ```
    #[rhai_fn(name = "run_goal", return_raw)]
    pub fn run_goal_on(
        ctx: NativeCallContext,
        goal: &str,
        args: Array,
        options: Map,
    ) -> Result<bool, Box<EvalAltResult>> {
        let o: options::RunGoalOptions = options::read(options)?;
        let args = args.into_iter().map(|a| a.to_string()).collect();
        let ok = orchestrator(&ctx, "run_goal")?.run_goal(goal, args, o.roles, o.hosts)?;
        if ok || o.allow_fail {
            return Ok(ok);
        }
        // After Ctrl-C the goal failed because it was stopped: the controller goal stops too.
        if crate::exec::interrupt::any_interrupted() {
            return Err(controller_error_at(
                &ctx,
                "interrupted",
                format!("interrupted during goal `{goal}`"),
            ));
        }
        Err(controller_error_at(
            &ctx,
            "goal",
            format!(
                "run_goal: goal `{goal}` failed (the run's report says on which hosts and why)"
            ),
        ))
    }

    /// The env's hosts that answer over SSH right now.
    ///
    /// ```rhai
    /// let up = reachable();
    /// ```
    #[rhai_fn(name = "reachable", return_raw)]
    pub fn reachable(ctx: NativeCallContext) -> Result<Array, Box<EvalAltResult>> {
        Ok(orchestrator(&ctx, "reachable")?
            .reachable()?
            .into_iter()
            .map(Dynamic::from)
            .collect())
    }

    /// The env's virtual IP for a pair of load balancers: `#{ address, router_id }`. `wanted`
    /// is an IPv4 address, or `""` for one the provider picks (the `local` provider reserves a
    /// free address of its bridge). The same env gets the same pair on every call, and no
    /// other env on the network shares either; an address outside the network, or taken, is
    /// an error, and so is any VIP on EC2, whose network does not carry VRRP. On OpenStack
    /// the address is a Neutron port's, which the env's machines' ports may carry.
    ///
    /// ```rhai
    /// let vip = virtual_ip("");
    /// log(`the site answers at ${vip.address}`);
    /// ```
    #[rhai_fn(name = "virtual_ip", return_raw)]
    pub fn virtual_ip(ctx: NativeCallContext, wanted: &str) -> Result<Map, Box<EvalAltResult>> {
        let vip = env_actions(&ctx, "virtual_ip")?.virtual_ip(wanted)?;
        let mut out = Map::new();
        out.insert("address".into(), vip.address.into());
        out.insert("router_id".into(), Dynamic::from_int(vip.router_id.into()));
        Ok(out)
    }

    /// Whether the certificate in `path` (a PEM on the controller; relative paths start at the
    /// project) must be renewed for `domains`: `#{ reason, ends, renew_at }`. `reason` says
    /// why (none yet, other names, expired, less than a third of its lifetime left) and is
    /// empty when it need not be; `ends` and `renew_at` are UTC dates (`2026-03-01 12:00
    /// UTC`), empty when there is no certificate.
    ///
    /// ```rhai
    /// let due = acme_renewal(".weft/secrets/prod/site-acme.pem", ["example.org"]);
    /// if due.reason == "" { log(`good until ${due.ends}`); }
    /// ```
    #[rhai_fn(name = "acme_renewal", return_raw)]
    pub fn acme_renewal(
        ctx: NativeCallContext,
        path: &str,
        domains: Array,
    ) -> Result<Map, Box<EvalAltResult>> {
        let root = ctx
            .tag()
            .and_then(|t| t.read_lock::<ScriptContext>().map(|c| c.root.clone()))
            .unwrap_or_default();
        let domains = domains
            .into_iter()
            .map(|d| {
                d.into_string()
                    .map_err(|t| format!("acme_renewal: domains holds a {t}, not a name"))
            })
            .collect::<Result<Vec<String>, String>>()?;
        let path = root.join(path);
        let pem = match std::fs::read(&path) {
            Ok(pem) => Some(pem),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(format!("acme_renewal: {}: {err}", path.display()).into()),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let due = crate::acme::renewal(pem.as_deref(), &domains, now);
        let date = |t: i64| {
            if t == 0 {
                String::new()
            } else {
                crate::acme::utc_date(t)
            }
        };
        let mut out = Map::new();
        out.insert("reason".into(), due.reason.into());
        out.insert("ends".into(), date(due.ends).into());
        out.insert("renew_at".into(), date(due.renew_at).into());
        Ok(out)
    }

    /// Orders a certificate over ACME for `options.domains` and writes its chain, then its new
    /// key, to `options.out` (mode 0600; folders it makes are mode 0700). `options`: `domains`
    /// (lowercase names), `out` and `account_dir` (where the account is kept, one file per
    /// directory, mode 0600), both inside the project's `.weft/secrets`,
    /// `directory` (`"production"`, `"staging"` or an https URL), `email`, `ca` (a PEM of the
    /// roots to trust for the ACME server instead of the system's) and `timeout` (seconds the
    /// server may take to validate, default 120); relative paths start at the project.
    /// `publish` gets the HTTP-01 challenges, `[#{ domain, token, key_authorization }]` (a
    /// token that is not base64url, as RFC 8555 wants, stops the order before `publish`), and
    /// returns `true` once every lb answers them. A domain that does not validate stops the goal
    /// with an error naming it, and `out` is left as it was. Controller goals only.
    ///
    /// ```rhai
    /// acme_order(#{ domains: ["example.org"], out: ".weft/secrets/prod/site-acme.pem",
    ///     account_dir: ".weft/secrets/prod/acme", email: "ops@example.org" },
    ///     |challenges| run_goal("haproxy_acme", [`${challenges.len()}`], #{ roles: ["lb"] }));
    /// ```
    #[rhai_fn(name = "acme_order", return_raw)]
    pub fn acme_order(
        ctx: NativeCallContext,
        options: Map,
        publish: rhai::FnPtr,
    ) -> Result<(), Box<EvalAltResult>> {
        orchestrator(&ctx, "acme_order")?;
        let root = ctx
            .tag()
            .and_then(|t| t.read_lock::<ScriptContext>().map(|c| c.root.clone()))
            .unwrap_or_default();
        let o: options::AcmeOrderOptions = options::read(options)?;
        let domains = o.domains;
        if domains.is_empty() {
            return Err("acme_order: `domains` names no domain".into());
        }
        if let Some((domain, why)) = domains
            .iter()
            .find_map(|d| crate::acme::domain_problem(d).map(|why| (d, why)))
        {
            return Err(format!("acme_order: domain `{domain}` {why}").into());
        }
        // Private keys are written here, and their folders made: only inside the project's
        // .weft/secrets, so no folder of the project or the system changes hands.
        let private = |value: Option<String>, key: &str| {
            let path = value.ok_or_else(|| format!("acme_order: option `{key}` is required"))?;
            crate::acme::secrets_path(&root, &path).ok_or_else(|| {
                format!(
                    "acme_order: `{key}` is `{path}`, outside the project's .weft/secrets, \
                     where weft keeps private keys: give a path such as \
                     \".weft/secrets/prod/site-acme.pem\""
                )
            })
        };
        let out = private(o.out, "out")?;
        let account_dir = private(o.account_dir, "account_dir")?;
        let request = crate::acme::CertRequest {
            directory: o.directory.unwrap_or_default(),
            ca: o.ca.filter(|c| !c.is_empty()).map(|c| root.join(c)),
            account_dir,
            email: o.email.unwrap_or_default(),
            domains,
            out,
            validation_deadline: o
                .timeout
                .map_or(std::time::Duration::from_secs(120), |t| t.0),
        };
        // The run's Ctrl-C ends the order, as it ends every other network step.
        let cancel = crate::exec::interrupt::cancel_now();
        let stop: crate::acme::Stop = Box::pin(async move {
            match cancel {
                Some(cancel) => cancel.wait().await,
                None => std::future::pending().await,
            }
        });
        crate::acme::order(&request, stop, |challenges| {
            let list: Array = challenges
                .iter()
                .map(|c| {
                    let mut map = Map::new();
                    map.insert("domain".into(), c.domain.clone().into());
                    map.insert("token".into(), c.token.clone().into());
                    map.insert(
                        "key_authorization".into(),
                        c.key_authorization.clone().into(),
                    );
                    Dynamic::from_map(map)
                })
                .collect();
            match publish.call_within_context::<Dynamic>(&ctx, (list,)) {
                Ok(done) if done.as_bool().unwrap_or(true) => Ok(()),
                Ok(_) => Err("the goal that puts them there failed (see above)".to_string()),
                Err(err) => Err(err.to_string()),
            }
        })
        .map_err(|e| e.to_string().into())
    }
}
