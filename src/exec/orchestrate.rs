//! The env-level actions controller goals call (`machines()`, `create_machines()`,
//! `run_goal()` ...) and provisioning of new machines. Nested runs start from the invoking
//! run's `RunContext`, so they keep its flags (`--check`, `--json`, `-i`, `--become`, ...).
//! Each action runs on a thread of its own, because the goal that calls it already runs inside
//! the fan-out's async runtime.

use std::sync::Arc;

use super::launch::RunContext;
use super::orchestrator::{MachineInfo, OrchestrateError, Orchestrator, RoleSpec, VipInfo};
use super::runner::{Job, CONTROLLER};
use super::settings::Answer;
use crate::cloud::env::CloudEnv;
use crate::cloud::Machine;
use crate::error::EXIT_OK;
use crate::inventory::{HostFilter, Inventory, Selection};

/// The actions of one env, for one run.
pub struct EnvOrchestrator {
    run: Arc<RunContext>,
    env: String,
}

impl EnvOrchestrator {
    /// Actions on env `env`, reporting to the run's output: a `launch::EnvActions`.
    pub fn actions(run: Arc<RunContext>, env: &str) -> Arc<dyn Orchestrator> {
        Arc::new(EnvOrchestrator {
            run,
            env: env.to_string(),
        })
    }

    fn log(&self, message: &str) {
        self.run.output.log(CONTROLLER, message);
    }

    fn cloud(&self) -> miette::Result<CloudEnv> {
        Ok(CloudEnv::open(&self.run.project, &self.env)?)
    }

    fn check(&self) -> bool {
        self.run.settings.check
    }

    /// A refusal, kept for the invocation's last line, which says what was not done.
    fn refused(&self, err: OrchestrateError) -> OrchestrateError {
        self.run.output.refused(&err.to_string());
        err
    }
}

fn isolated<T: Send>(
    work: impl FnOnce() -> miette::Result<T> + Send,
) -> Result<T, OrchestrateError> {
    std::thread::scope(|s| match s.spawn(work).join() {
        Ok(result) => result.map_err(OrchestrateError::Failed),
        Err(_) => Err(OrchestrateError::Panicked),
    })
}

fn info(m: Machine) -> MachineInfo {
    MachineInfo {
        name: m.name,
        role: m.role,
        ordinal: m.ordinal,
        state: m.state,
        address: m.address.unwrap_or_default(),
        id: m.id,
    }
}

/// Runs `<role>_provision` on `machines` of env `env`; nothing when the role has no such goal
/// or the run has no compiled goals. Returns the exit code of the run.
pub fn provision(
    run: &Arc<RunContext>,
    env: &str,
    role: &str,
    machines: &[Machine],
) -> miette::Result<i32> {
    let code = provision_only(run, env, role, machines)?;
    if code != EXIT_OK {
        crate::logging::note(&format!(
            "weft: `{role}_provision` failed on some new machines; they are left running for you to inspect"
        ));
    }
    Ok(code)
}

/// `provision` without the note that failed machines are left running, for callers that
/// terminate them (`weft watch`).
pub fn provision_only(
    run: &Arc<RunContext>,
    env: &str,
    role: &str,
    machines: &[Machine],
) -> miette::Result<i32> {
    let goal_name = format!("{role}_provision");
    let Some(engine) = run.engine.clone() else {
        return Ok(EXIT_OK);
    };
    let Ok(goal) = engine.goal(&goal_name) else {
        return Ok(EXIT_OK);
    };
    let mut inventory = Inventory::resolve(&run.project, env)?;
    inventory.hosts.clear();
    inventory.roles.clear();
    inventory.add_machines(machines, &CloudEnv::open(&run.project, env)?.section);
    let hosts = inventory.hosts.clone();
    let job = Job::Goal {
        engine,
        goal,
        args: Vec::new(),
    };
    run.execute(Selection { inventory, hosts }, job, false)
}

impl Orchestrator for EnvOrchestrator {
    fn machines(&self) -> Result<Vec<MachineInfo>, OrchestrateError> {
        isolated(|| Ok(self.cloud()?.list()?.into_iter().map(info).collect()))
    }

    fn create(&self, role: &str, count: u32) -> Result<Vec<MachineInfo>, OrchestrateError> {
        if self.check() {
            self.log(&format!(
                "would create {count} machine(s) of role `{role}` and provision them"
            ));
            return Ok(Vec::new());
        }
        isolated(|| {
            let cloud = self.cloud()?;
            // New machines while the env's old ones still run under `/` is likely a mistake.
            if let Ok(Some(note)) = cloud.old_default_note() {
                self.log(&note);
            }
            let made = cloud.create(role, count, None, Vec::new(), &mut |m| {
                let at = m.address.as_deref().unwrap_or("-");
                self.log(&format!("created {} ({}) at {at}", m.name, m.id));
            })?;
            let code = provision(&self.run, &self.env, role, &made)?;
            if code != EXIT_OK {
                return Err(miette::miette!(
                    "`{role}_provision` failed on some new machines"
                ));
            }
            Ok(made.into_iter().map(info).collect())
        })
    }

    fn terminate(&self, names: &[String]) -> Result<(), OrchestrateError> {
        if self.check() {
            for name in names {
                self.log(&format!("would terminate machine {name}"));
            }
            return Ok(());
        }
        if names.is_empty() {
            return Ok(());
        }
        // Whose machines they are, from the env's own provider settings: a second project
        // with an env of the same name sees the difference here.
        let whose = match self.cloud() {
            Ok(cloud) => cloud.describe(),
            Err(_) => format!("env `{}`", self.env),
        };
        let question = format!("terminate these machines of {whose} and delete their disks?");
        let refused = |why: &'static str| {
            self.refused(OrchestrateError::NotConfirmed {
                why,
                undone: format!("terminated ({})", names.join(", ")),
            })
        };
        match self.run.settings.confirm.ask(&question, names) {
            Answer::Yes => {}
            Answer::No => return Err(refused("")),
            Answer::NoTerminal => return Err(refused(" (no terminal to ask on)")),
        }
        isolated(|| {
            let cloud = self.cloud()?;
            for name in names {
                let gone = cloud.terminate(name)?;
                self.log(&format!("terminated {}", gone.name));
            }
            Ok(())
        })
    }

    fn spec(&self) -> Vec<RoleSpec> {
        let section = self
            .run
            .project
            .config
            .as_ref()
            .and_then(|c| c.file.env.get(&self.env));
        section
            .map(|s| {
                s.machines
                    .iter()
                    .map(|(role, entry)| RoleSpec {
                        role: role.clone(),
                        count: entry.count,
                        min: entry.min.unwrap_or(entry.count),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn goal_exists(&self, goal: &str) -> bool {
        self.run
            .engine
            .as_ref()
            .is_some_and(|engine| engine.goal(goal).is_ok())
    }

    fn run_goal(
        &self,
        goal: &str,
        args: Vec<String>,
        roles: Vec<String>,
        hosts: Vec<String>,
    ) -> Result<bool, OrchestrateError> {
        isolated(|| {
            let filter = HostFilter {
                env: Some(self.env.clone()),
                roles,
                hosts,
            };
            Ok(self.run.run_goal(goal, &args, &filter)? == EXIT_OK)
        })
    }

    fn confirm(&self, question: &str, items: &[String]) -> Result<(), OrchestrateError> {
        let refused = |why: &'static str| {
            self.refused(OrchestrateError::NotConfirmed {
                why,
                undone: "done".into(),
            })
        };
        match self.run.settings.confirm.ask(question, items) {
            Answer::Yes => Ok(()),
            Answer::No => Err(refused("")),
            Answer::NoTerminal => Err(refused(" (no terminal to ask on)")),
        }
    }

    fn reachable(&self) -> Result<Vec<String>, OrchestrateError> {
        isolated(|| {
            let filter = HostFilter {
                env: Some(self.env.clone()),
                ..HostFilter::default()
            };
            let selection = Selection::resolve(&self.run.project, &filter)?;
            let mut up = Vec::new();
            for host in selection.hosts {
                let Ok(target) = crate::transport::ssh::Target::parse(&host.address) else {
                    continue;
                };
                let addr = (target.host.as_str(), target.port.unwrap_or(22));
                let answers = std::net::ToSocketAddrs::to_socket_addrs(&addr)
                    .ok()
                    .and_then(|mut a| a.next())
                    .is_some_and(|a| {
                        std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(3))
                            .is_ok()
                    });
                if answers {
                    up.push(host.name);
                }
            }
            Ok(up)
        })
    }

    fn virtual_ip(&self, wanted: &str) -> Result<VipInfo, OrchestrateError> {
        let wanted = match wanted.trim() {
            "" => None,
            text => Some(
                text.parse::<std::net::Ipv4Addr>()
                    .map_err(|_| OrchestrateError::BadVip(text.to_string()))?,
            ),
        };
        isolated(|| {
            let Some(cloud) = CloudEnv::of(&self.run.project, &self.env)? else {
                // Hosts listed by hand: the address is the project's to choose.
                let Some(address) = wanted else {
                    return Err(miette::miette!(
                        "env `{}` has no provider to hand out a virtual IP: set `vip` to a free \
                         address of the load balancers' network",
                        self.env
                    ));
                };
                return Ok(VipInfo {
                    address: address.to_string(),
                    router_id: router_id_of(&self.env),
                });
            };
            // A check reserves nothing: it sees the pair held, or the one a run would take.
            let vip = if self.check() {
                cloud.peek_virtual_ip(wanted)?
            } else {
                cloud.virtual_ip(wanted)?
            };
            Ok(VipInfo {
                address: vip.address.to_string(),
                router_id: vip.router_id,
            })
        })
    }
}

/// A router id for an env without a provider: the same for the same env name, spread over
/// 1..=255 (the project picks its addresses there, and the id only has to differ from its
/// neighbours').
fn router_id_of(env: &str) -> u8 {
    let sum = env
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    u8::try_from(sum % 255 + 1).unwrap_or(1)
}
