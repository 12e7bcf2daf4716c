//! Scaling decisions: each role's metrics handed to its `<role>_scale(metrics)` goal, whose
//! answer (a count, or `#{ count, reason }`) becomes a decision when it differs from now.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::sample::MachineSample;
use crate::config::MachineEntry;
use crate::exec::goals::GoalEngine;
use crate::inventory::Inventory;

/// CPU percent above which the stdlib adds a machine when the role does not say.
const SCALE_UP_CPU: f64 = 80.0;
/// CPU percent below which the stdlib removes one when the role does not say.
const SCALE_DOWN_CPU: f64 = 20.0;
/// Seconds between two decisions for one role when the role does not say.
const COOLDOWN: u64 = 120;
/// Seconds a drained machine may keep connections when the role does not say.
const DRAIN_TIMEOUT: u64 = 60;

/// What the policy wants of one role.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The role.
    pub role: String,
    /// Machines it has now.
    pub from: u64,
    /// Machines its policy wants.
    pub to: u64,
    /// Why, in the policy's words.
    pub reason: String,
}

/// Asks the policies of an env's roles after each sample, holding each role for its cooldown
/// after a decision (or longer, see `hold`).
pub struct Policy<'a> {
    engine: &'a dyn GoalEngine,
    machines: HashMap<String, MachineEntry>,
    until: HashMap<String, Instant>,
    color: bool,
}

impl<'a> Policy<'a> {
    /// The policy of an env's roles, with `[env.X.machines.ROLE]` settings in `machines`.
    pub fn new(
        engine: &'a dyn GoalEngine,
        machines: HashMap<String, MachineEntry>,
        color: bool,
    ) -> Self {
        Policy {
            engine,
            machines,
            until: HashMap::new(),
            color,
        }
    }

    /// The role's `cooldown` (default 120 s).
    pub fn cooldown(&self, role: &str) -> Duration {
        Duration::from_secs(
            self.machines
                .get(role)
                .and_then(|e| e.cooldown)
                .unwrap_or(COOLDOWN),
        )
    }

    /// How long a drained machine of the role may keep connections (`drain_timeout`).
    pub fn drain_timeout(&self, role: &str) -> Duration {
        Duration::from_secs(
            self.machines
                .get(role)
                .and_then(|e| e.drain_timeout)
                .unwrap_or(DRAIN_TIMEOUT),
        )
    }

    /// Asks the role's policy again only after `wait` from now.
    pub fn hold(&mut self, role: &str, wait: Duration) {
        self.until.insert(role.to_string(), Instant::now() + wait);
    }

    /// Asks the role's policy again at the next sample.
    pub fn release(&mut self, role: &str) {
        self.until.remove(role);
    }

    /// The decisions for this sample of `inventory`'s machines; a role without a
    /// `<role>_scale` goal is left alone, and a policy that fails is reported as an error for
    /// its role.
    pub fn decide(
        &mut self,
        inventory: &Inventory,
        samples: &[MachineSample],
    ) -> Vec<Result<Decision, String>> {
        let mut decisions = Vec::new();
        for (role, hosts) in &inventory.roles {
            let goal = format!("{role}_scale");
            if self.engine.goal(&goal).is_err() {
                continue;
            }
            let entry = self.machines.get(role);
            if self.until.get(role).is_some_and(|t| Instant::now() < *t) {
                continue;
            }
            let metrics = metrics(role, hosts, samples, entry);
            let count = hosts.len() as u64;
            let answer = match self.engine.decide(&goal, &metrics, self.color) {
                Ok(answer) => answer,
                Err(failure) => {
                    decisions.push(Err(format!("{goal}: {}", failure.message)));
                    continue;
                }
            };
            let (wanted, reason) = match &answer {
                serde_json::Value::Number(n) => (n.as_i64(), String::new()),
                serde_json::Value::Object(map) => (
                    map.get("count").and_then(serde_json::Value::as_i64),
                    map.get("reason")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
                _ => (None, String::new()),
            };
            let Some(wanted) = wanted.filter(|w| *w >= 0) else {
                decisions.push(Err(format!(
                    "{goal} returned {answer}, not a count or #{{ count, reason }}"
                )));
                continue;
            };
            // Never below `min` nor above a `max` weft.toml sets, whatever a project's policy
            // says: `max` is what the env may cost.
            let min = entry.and_then(|e| e.min).map_or(0, u64::from);
            let max = entry.and_then(|e| e.max).map_or(u64::MAX, u64::from);
            let to = (wanted as u64).max(min).min(max.max(min));
            if to != count {
                let cooldown = self.cooldown(role);
                self.hold(role, cooldown);
                decisions.push(Ok(Decision {
                    role: role.clone(),
                    from: count,
                    to,
                    reason,
                }));
            }
        }
        decisions
    }
}

/// `metrics` of one role: its machines' samples, their mean CPU and the role's thresholds.
fn metrics(
    role: &str,
    hosts: &[String],
    samples: &[MachineSample],
    entry: Option<&MachineEntry>,
) -> serde_json::Value {
    let mine: Vec<&MachineSample> = samples.iter().filter(|s| hosts.contains(&s.host)).collect();
    let cpus: Vec<f64> = mine.iter().filter_map(|s| s.cpu).collect();
    let cpu = (!cpus.is_empty())
        .then(|| (cpus.iter().sum::<f64>() / cpus.len() as f64 * 10.0).round() / 10.0);
    let count = hosts.len() as u64;
    json!({
        "role": role,
        "count": count,
        "cpu": cpu,
        "min": entry.and_then(|e| e.min).map_or(count, u64::from),
        "max": entry.and_then(|e| e.max).map_or(count, u64::from),
        "scale_up_cpu": entry.and_then(|e| e.scale_up_cpu).unwrap_or(SCALE_UP_CPU),
        "scale_down_cpu": entry.and_then(|e| e.scale_down_cpu).unwrap_or(SCALE_DOWN_CPU),
        "machines": mine,
    })
}
