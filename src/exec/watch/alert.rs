//! Alerts: a machine's CPU, memory or disk crossing `[env.X] alert_cpu`, `alert_mem` or
//! `alert_disk`, or a machine that stops answering. Each condition is an event once when it
//! starts (`firing`) and once when it ends (`resolved`), never on every sample.

use std::collections::HashMap;

use serde::Serialize;

use super::sample::MachineSample;

/// Percent thresholds; `None` watches nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Thresholds {
    /// `alert_cpu`.
    pub cpu: Option<f64>,
    /// `alert_mem`.
    pub mem: Option<f64>,
    /// `alert_disk`.
    pub disk: Option<f64>,
}

/// One change of one condition of one machine.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    /// `cpu`, `mem`, `disk` or `down`.
    pub kind: &'static str,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// The machine.
    pub host: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// The sampled percent (not for `down`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The threshold crossed (not for `down`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// One line for people.
    pub message: String,
    /// Seconds since the Unix epoch of the sample.
    pub at: u64,
}

/// The conditions that are firing now, by machine and kind.
#[derive(Debug, Default)]
pub struct Alerts {
    thresholds: Thresholds,
    firing: HashMap<(String, &'static str), bool>,
}

impl Alerts {
    /// Watches `thresholds`, and machines that do not answer.
    pub fn new(thresholds: Thresholds) -> Self {
        Alerts {
            thresholds,
            firing: HashMap::new(),
        }
    }

    /// The conditions this sample started or ended. A machine that does not answer keeps its
    /// other conditions as they were; a machine gone from the env is forgotten silently.
    pub fn check(&mut self, samples: &[MachineSample]) -> Vec<Alert> {
        self.firing
            .retain(|(host, _), _| samples.iter().any(|s| &s.host == host));
        let mut alerts = Vec::new();
        for sample in samples {
            let down = sample.error.as_deref();
            let message = match down {
                Some(error) => format!("{} does not answer: {error}", sample.host),
                None => format!("{} answers again", sample.host),
            };
            self.change(
                sample,
                "down",
                down.is_some(),
                None,
                None,
                message,
                &mut alerts,
            );
            if down.is_some() {
                continue;
            }
            let metrics = [
                ("cpu", sample.cpu, self.thresholds.cpu),
                ("mem", sample.mem, self.thresholds.mem),
                ("disk", sample.disk, self.thresholds.disk),
            ];
            for (kind, value, threshold) in metrics {
                let (Some(value), Some(threshold)) = (value, threshold) else {
                    continue;
                };
                let over = value > threshold;
                let message = if over {
                    format!(
                        "{}: {kind} {value:.1}% > {threshold:.1}% (alert_{kind})",
                        sample.host
                    )
                } else {
                    format!(
                        "{}: {kind} {value:.1}% is back under {threshold:.1}%",
                        sample.host
                    )
                };
                self.change(
                    sample,
                    kind,
                    over,
                    Some(value),
                    Some(threshold),
                    message,
                    &mut alerts,
                );
            }
        }
        alerts
    }

    #[allow(clippy::too_many_arguments)]
    fn change(
        &mut self,
        sample: &MachineSample,
        kind: &'static str,
        now: bool,
        value: Option<f64>,
        threshold: Option<f64>,
        message: String,
        alerts: &mut Vec<Alert>,
    ) {
        let was = self
            .firing
            .insert((sample.host.clone(), kind), now)
            .unwrap_or(false);
        if was == now {
            return;
        }
        alerts.push(Alert {
            kind,
            state: if now { "firing" } else { "resolved" },
            host: sample.host.clone(),
            roles: sample.roles.clone(),
            value,
            threshold,
            message,
            at: sample.at,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(host: &str, disk: f64) -> MachineSample {
        MachineSample {
            host: host.into(),
            disk: Some(disk),
            ..MachineSample::default()
        }
    }

    #[test]
    fn a_condition_alerts_once_when_it_starts_and_once_when_it_ends() {
        let mut alerts = Alerts::new(Thresholds {
            disk: Some(80.0),
            ..Thresholds::default()
        });
        assert!(alerts.check(&[sample("a", 50.0)]).is_empty());
        let fired = alerts.check(&[sample("a", 90.0)]);
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].kind, fired[0].state), ("disk", "firing"));
        assert!(alerts.check(&[sample("a", 95.0)]).is_empty());
        let resolved = alerts.check(&[sample("a", 10.0)]);
        assert_eq!(resolved[0].state, "resolved");
    }

    #[test]
    fn a_machine_that_stops_answering_alerts_once() {
        let mut alerts = Alerts::new(Thresholds::default());
        let dead = MachineSample::failed("b".into(), Vec::new(), 0, "timeout".into());
        let fired = alerts.check(std::slice::from_ref(&dead));
        assert_eq!((fired[0].kind, fired[0].state), ("down", "firing"));
        assert!(alerts.check(&[dead]).is_empty());
        assert_eq!(alerts.check(&[sample("b", 1.0)])[0].state, "resolved");
    }
}
