//! Acting on a scaling decision, one machine at a time, under the deploy locks of the role's
//! apps (`scale_lock`): a new machine is created, provisioned and joined to its apps and lbs
//! (`scale_join`), or the newest one is drained (`scale_drain`), emptied of connections,
//! terminated and forgotten by the lbs (`scale_forget`). The hooks are stdlib goals in
//! `env/scale.rhai` that a project may override; a role without apps only gets machines made
//! and terminated.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::policy::{Decision, Policy};
use super::sample::MachineSample;
use crate::cloud::env::CloudEnv;
use crate::cloud::Machine;
use crate::error::EXIT_OK;
use crate::exec::launch::RunContext;
use crate::exec::orchestrate::provision_only;
use crate::inventory::HostFilter;

/// The longest back-off after failed actions.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// One step of an action, as the watcher reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ActionEvent {
    /// `scale_up` or `scale_down`.
    pub action: &'static str,
    /// The role.
    pub role: String,
    /// The machine made or removed, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// `started`, `done`, `failed`, `paused` (a deploy holds the lock) or `skipped`.
    pub state: &'static str,
    /// The policy's reason for the action.
    pub reason: String,
    /// What happened.
    pub message: String,
    /// Seconds before the role's policy is asked again, after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in: Option<u64>,
}

/// What one action came to.
enum Outcome {
    Done(String),
    Paused(String),
    Skipped(String),
    Failed(String),
}

/// Carries out decisions on one env; counts failures per role for the back-off.
pub struct Actor {
    ctx: Arc<RunContext>,
    env: String,
    failures: HashMap<String, u32>,
}

impl Actor {
    /// Acts on env `env` through the watcher's run context.
    pub fn new(ctx: Arc<RunContext>, env: &str) -> Self {
        Actor {
            ctx,
            env: env.to_string(),
            failures: HashMap::new(),
        }
    }

    /// Brings `decision.role` from `from` to `to` machines, one at a time, stopping at the first
    /// one that does not succeed or when a stop is requested; every step goes to `report`.
    /// `samples` is the sample the decision came from; `probe` samples the lbs again (to watch
    /// a drained machine's connections end). Returns whether the env's machines changed.
    pub fn act(
        &mut self,
        decision: &Decision,
        samples: &[MachineSample],
        policy: &mut Policy<'_>,
        probe: &mut dyn FnMut() -> Vec<MachineSample>,
        report: &mut dyn FnMut(&ActionEvent),
    ) -> bool {
        let up = decision.to > decision.from;
        let steps = decision.to.abs_diff(decision.from);
        let action = if up { "scale_up" } else { "scale_down" };
        let mut changed = false;
        for _ in 0..steps {
            if self.ctx.interrupt.stop_requested() {
                break;
            }
            let event = |state, machine: Option<String>, message: String| ActionEvent {
                action,
                role: decision.role.clone(),
                machine,
                state,
                reason: decision.reason.clone(),
                message,
                retry_in: None,
            };
            report(&event(
                "started",
                None,
                format!(
                    "{} a machine of role {}",
                    if up { "adding" } else { "removing" },
                    decision.role
                ),
            ));
            let mut machine = None;
            let outcome = if up {
                self.scale_up(&decision.role, &mut machine, report)
            } else {
                let timeout = policy.drain_timeout(&decision.role);
                self.scale_down(&decision.role, samples, &mut machine, probe, timeout)
            };
            match outcome {
                Outcome::Done(message) => {
                    changed = true;
                    self.failures.remove(&decision.role);
                    report(&event("done", machine, message));
                }
                Outcome::Paused(message) => {
                    policy.release(&decision.role);
                    report(&event("paused", None, message));
                    break;
                }
                Outcome::Skipped(message) => {
                    report(&event("skipped", machine, message));
                    break;
                }
                Outcome::Failed(message) => {
                    changed |= machine.is_some();
                    let failures = self.failures.entry(decision.role.clone()).or_insert(0);
                    *failures += 1;
                    let wait = backoff(policy.cooldown(&decision.role), *failures);
                    policy.hold(&decision.role, wait);
                    let mut failed = event("failed", machine, message);
                    failed.retry_in = Some(wait.as_secs());
                    report(&failed);
                    break;
                }
            }
        }
        if changed && !matches!(self.failures.get(&decision.role), Some(n) if *n > 0) {
            let cooldown = policy.cooldown(&decision.role);
            policy.hold(&decision.role, cooldown);
        }
        changed
    }

    /// Runs hook `goal` with `args` when it exists: `Ok(true)` when it succeeded, `Ok(false)`
    /// when there is no such goal, the failure otherwise.
    fn hook(&self, goal: &str, args: &[String]) -> Result<bool, String> {
        let exists = self
            .ctx
            .engine
            .as_ref()
            .is_some_and(|engine| engine.goal(goal).is_ok());
        if !exists {
            return Ok(false);
        }
        let filter = HostFilter {
            env: Some(self.env.clone()),
            ..HostFilter::default()
        };
        match self.ctx.run_goal(goal, args, &filter) {
            Ok(EXIT_OK) => Ok(true),
            Ok(_) => Err(format!("`{goal}` failed (see above)")),
            Err(report) => Err(format!("`{goal}`: {report}")),
        }
    }

    fn cloud(&self) -> Result<CloudEnv, String> {
        CloudEnv::open(&self.ctx.project, &self.env).map_err(|err| err.to_string())
    }

    /// Takes the role's deploy locks, runs `work`, releases them whatever came of it.
    fn locked(&self, role: &str, work: impl FnOnce() -> Outcome) -> Outcome {
        if let Err(why) = self.hook("scale_lock", &[role.to_string()]) {
            tracing::info!(role, why, "scaling paused");
            return Outcome::Paused(format!(
                "a deploy holds the deploy lock of the apps of role {role} (see above); asking again at the next sample"
            ));
        }
        let outcome = work();
        if let Err(why) = self.hook("scale_unlock", &[role.to_string()]) {
            tracing::warn!(role, why, "releasing the scaling locks failed");
        }
        outcome
    }

    fn scale_up(
        &self,
        role: &str,
        machine: &mut Option<String>,
        report: &mut dyn FnMut(&ActionEvent),
    ) -> Outcome {
        let cloud = match self.cloud() {
            Ok(cloud) => cloud,
            Err(why) => return Outcome::Failed(format!("cannot create a machine: {why}")),
        };
        self.locked(role, || {
            let made = match cloud.create(role, 1, None, Vec::new(), &mut |m: &Machine| {
                report(&ActionEvent {
                    action: "scale_up",
                    role: role.to_string(),
                    machine: Some(m.name.clone()),
                    state: "created",
                    reason: String::new(),
                    message: format!(
                        "created {} at {}",
                        m.name,
                        m.address.as_deref().unwrap_or("-")
                    ),
                    retry_in: None,
                });
            }) {
                Ok(made) => made,
                Err(err) => return Outcome::Failed(format!("creating a machine failed: {err}")),
            };
            let Some(new) = made.first() else {
                return Outcome::Failed("the provider made no machine".into());
            };
            *machine = Some(new.name.clone());
            let provisioned = provision_only(&self.ctx, &self.env, role, &made);
            let failure = match provisioned {
                Ok(EXIT_OK) => match self.hook("scale_join", std::slice::from_ref(&new.name)) {
                    Ok(_) => None,
                    Err(why) => Some(format!("{} did not join: {why}", new.name)),
                },
                Ok(_) => Some(format!("`{role}_provision` failed on {}", new.name)),
                Err(err) => Some(format!("provisioning {} failed: {err}", new.name)),
            };
            let Some(failure) = failure else {
                return Outcome::Done(format!("{} serves in role {role}", new.name));
            };
            // A machine that cannot serve costs money and confuses the next deploy.
            let gone = match cloud.terminate(&new.name) {
                Ok(_) => format!("{} was terminated", new.name),
                Err(err) => format!("terminating {} failed too: {err}", new.name),
            };
            if let Err(why) = self.hook("scale_forget", std::slice::from_ref(&new.name)) {
                tracing::warn!(
                    machine = new.name,
                    why,
                    "lbs did not forget a failed machine"
                );
            }
            Outcome::Failed(format!("{failure}; {gone}"))
        })
    }

    fn scale_down(
        &self,
        role: &str,
        samples: &[MachineSample],
        machine: &mut Option<String>,
        probe: &mut dyn FnMut() -> Vec<MachineSample>,
        timeout: Duration,
    ) -> Outcome {
        let cloud = match self.cloud() {
            Ok(cloud) => cloud,
            Err(why) => return Outcome::Failed(format!("cannot remove a machine: {why}")),
        };
        let all = match cloud.list() {
            Ok(all) => all,
            Err(err) => return Outcome::Failed(format!("listing the machines failed: {err}")),
        };
        let answering = |name: &str| samples.iter().any(|s| s.host == name && s.error.is_none());
        let Some(victim) = victim(&all, role, answering) else {
            return Outcome::Skipped(format!(
                "{role} keeps its last machine: deploys take their lock there"
            ));
        };
        *machine = Some(victim.clone());
        self.locked(role, || {
            if let Err(why) = self.hook("scale_drain", std::slice::from_ref(&victim)) {
                return Outcome::Failed(format!("draining {victim} failed: {why}"));
            }
            let left = wait_drained(&victim, probe, timeout);
            if let Err(err) = cloud.terminate(&victim) {
                return Outcome::Failed(format!("terminating {victim} failed: {err}"));
            }
            if let Err(why) = self.hook("scale_forget", std::slice::from_ref(&victim)) {
                return Outcome::Failed(format!(
                    "{victim} was terminated, but the lbs still list it: {why}"
                ));
            }
            let note = if left > 0 {
                format!(
                    " ({left} connection(s) still open after {} s)",
                    timeout.as_secs()
                )
            } else {
                String::new()
            };
            Outcome::Done(format!("{victim} was drained and terminated{note}"))
        })
    }
}

/// The machine of `role` to remove: the newest running one, never the first answering one by
/// creation, where deploys take the env's lock (`first_answering` of `lib/app.rhai`).
fn victim(all: &[Machine], role: &str, answering: impl Fn(&str) -> bool) -> Option<String> {
    let mut mine: Vec<&Machine> = all
        .iter()
        .filter(|m| m.role == role && m.state == "running")
        .collect();
    mine.sort_by_key(|m| m.ordinal);
    let locker = mine
        .iter()
        .find(|m| answering(&m.name))
        .or(mine.first())
        .map(|m| m.name.clone());
    mine.iter()
        .rev()
        .find(|m| Some(&m.name) != locker.as_ref())
        .map(|m| m.name.clone())
}

/// Waits until no lb has a connection open to `server`, or `timeout`; the connections left.
fn wait_drained(
    server: &str,
    probe: &mut dyn FnMut() -> Vec<MachineSample>,
    timeout: Duration,
) -> u64 {
    let started = Instant::now();
    loop {
        let open: u64 = probe()
            .iter()
            .flat_map(|s| &s.servers)
            .filter(|s| s.server == server)
            .map(|s| s.sessions)
            .sum();
        if open == 0 || started.elapsed() >= timeout {
            return open;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The wait after the `failures`th failure in a row: the cooldown, doubled for each failure
/// after the first, at most an hour.
fn backoff(cooldown: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    cooldown.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(name: &str, ordinal: u32) -> Machine {
        Machine {
            name: name.into(),
            role: "app".into(),
            ordinal,
            state: "running".into(),
            id: format!("id-{name}"),
            address: None,
            image: None,
            tags: Default::default(),
            created: None,
        }
    }

    #[test]
    fn the_newest_machine_goes_never_the_lock_holder() {
        let all = [
            machine("app-0", 0),
            machine("app-2", 2),
            machine("app-1", 1),
        ];
        assert_eq!(victim(&all, "app", |_| true).as_deref(), Some("app-2"));
        assert_eq!(victim(&all[..1], "app", |_| true), None);
        // app-0 does not answer: app-2 takes the lock there, and app-0 goes.
        assert_eq!(
            victim(&all[..2], "app", |n| n != "app-0").as_deref(),
            Some("app-0")
        );
    }

    #[test]
    fn backoff_doubles_from_the_cooldown_up_to_an_hour() {
        let c = Duration::from_secs(60);
        assert_eq!(backoff(c, 1), c);
        assert_eq!(backoff(c, 3), Duration::from_secs(240));
        assert_eq!(backoff(c, 30), MAX_BACKOFF);
    }
}
