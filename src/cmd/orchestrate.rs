//! The env-level actions controller goals call (`machines()`, `create_machines()`,
//! `run_goal()` ...), built from the same commands the CLI runs. Each runs on a thread of its
//! own, because the goal that calls it already runs inside the fan-out's async runtime.

use crate::cli::{ConnectArgs, FanoutArgs, HostKeyPolicyArg, RunArgs, Select};
use crate::cloud::Machine;
use crate::exec::orchestrator::{MachineInfo, Orchestrator, RoleSpec};

use super::Context;

/// The actions of one env, for one `weft run`.
pub struct EnvOrchestrator {
    ctx: Context,
    env: String,
    break_lock: bool,
    set: Vec<(String, String)>,
}

impl EnvOrchestrator {
    /// Actions on env `env` of the project `ctx` runs in; goals it runs inherit `break_lock`
    /// and the `--set` variables.
    pub fn new(ctx: &Context, env: &str, break_lock: bool, set: Vec<(String, String)>) -> Self {
        EnvOrchestrator {
            ctx: ctx.clone(),
            env: env.to_string(),
            break_lock,
            set,
        }
    }
}

fn isolated<T: Send>(work: impl FnOnce() -> miette::Result<T> + Send) -> Result<T, String> {
    std::thread::scope(|s| match s.spawn(work).join() {
        Ok(result) => result.map_err(|report| report.to_string()),
        Err(_) => Err("internal error: an env action panicked".into()),
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

/// Connection flags with their defaults, for runs weft starts itself.
pub fn default_connect() -> ConnectArgs {
    ConnectArgs {
        identities: Vec::new(),
        known_hosts: None,
        host_key_policy: HostKeyPolicyArg::Strict,
        ssh_config: None,
        connect_timeout: 30,
        user: None,
    }
}

/// Fan-out flags with their defaults, for runs weft starts itself.
pub fn default_fanout() -> FanoutArgs {
    FanoutArgs {
        json: false,
        parallel: 32,
        serial: None,
        max_fail: None,
        become_root: false,
        become_user: "root".into(),
        ask_sudo_pass: false,
    }
}

impl Orchestrator for EnvOrchestrator {
    fn machines(&self) -> Result<Vec<MachineInfo>, String> {
        isolated(|| {
            let (project, _) = self.ctx.project()?;
            let env = super::cloud::cloud_env(&project, &self.env)?;
            let list = super::cloud::list(&env)?;
            Ok(list.into_iter().map(info).collect())
        })
    }

    fn create(&self, role: &str, count: u32) -> Result<Vec<MachineInfo>, String> {
        isolated(|| {
            let (project, _) = self.ctx.project()?;
            let env = super::cloud::cloud_env(&project, &self.env)?;
            let made = super::cloud::create_machines(&env, role, count, None, Vec::new())?;
            let code = super::provision::provision(&self.ctx, &project, &self.env, role, &made)?;
            if code != crate::error::EXIT_OK {
                return Err(miette::miette!(
                    "`{role}_provision` failed on some new machines"
                ));
            }
            Ok(made.into_iter().map(info).collect())
        })
    }

    fn terminate(&self, name: &str) -> Result<(), String> {
        isolated(|| {
            let (project, _) = self.ctx.project()?;
            let env = super::cloud::cloud_env(&project, &self.env)?;
            super::cloud::terminate(&env, name)
        })
    }

    fn spec(&self) -> Vec<RoleSpec> {
        let Ok((project, _)) = self.ctx.project() else {
            return Vec::new();
        };
        let section = project
            .config
            .as_ref()
            .and_then(|c| c.file.env.get(&self.env));
        section
            .map(|s| {
                s.get_ref()
                    .machines
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
        let Ok((project, layers)) = self.ctx.project() else {
            return false;
        };
        crate::script::engine::load(&layers, &project).is_ok_and(|e| e.scripts().goal(goal).is_ok())
    }

    fn run_goal(
        &self,
        goal: &str,
        args: Vec<String>,
        roles: Vec<String>,
        hosts: Vec<String>,
    ) -> Result<bool, String> {
        isolated(|| {
            let run = RunArgs {
                goal: goal.to_string(),
                args,
                select: Select {
                    env: Some(self.env.clone()),
                    roles,
                    hosts,
                },
                check: false,
                diff: false,
                break_lock: self.break_lock,
                set: self.set.clone(),
                connect: default_connect(),
                fanout: default_fanout(),
            };
            Ok(super::run::run(&self.ctx, run)? == crate::error::EXIT_OK)
        })
    }

    fn reachable(&self) -> Result<Vec<String>, String> {
        isolated(|| {
            let (project, _) = self.ctx.project()?;
            let select = Select {
                env: Some(self.env.clone()),
                roles: Vec::new(),
                hosts: Vec::new(),
            };
            let selection = super::fanout::select(&project, &select)?;
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
}
