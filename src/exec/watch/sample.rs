//! What one sample of a machine holds, the one shell command that reads it (load, CPU over
//! half a second, memory, disk of `/`, haproxy's stats socket where there is one) and the
//! parser of that command's output. Inside a container (`local` machines) `/proc/stat` is the
//! host's, and its cgroup may be shared with whatever started it, so CPU there is the CPU time
//! of the processes it sees (its own PID namespace).

use serde::Serialize;

/// Run on each machine per sample; fixed text, no argument is pasted in. Sections start with
/// `@name` lines so a missing tool leaves the others readable.
pub const SAMPLE_COMMAND: &str = r#"echo @load; cat /proc/loadavg
echo @cpu
if [ -s /run/systemd/container ]; then
  echo "procs $(nproc) $(getconf CLK_TCK)"
  for i in 1 2; do
    echo "uptime $(cut -d' ' -f1 /proc/uptime)"
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{ pid = $1; sub(/.*\) /, ""); print "pid", pid, $12 + $13 }'
    [ "$i" = 2 ] || sleep 0.5
  done
else
  head -n1 /proc/stat; sleep 0.5; head -n1 /proc/stat
fi
echo @mem; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
echo @disk; df -Pk / | tail -n1
if [ -S /run/haproxy.sock ]; then
  echo @haproxy
  echo 'show stat' | socat stdio unix-connect:/run/haproxy.sock 2>/dev/null \
    || echo 'show stat' | sudo -n socat stdio unix-connect:/run/haproxy.sock 2>/dev/null || true
fi
exit 0"#;

/// One machine at one moment.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MachineSample {
    /// Host name in the env.
    pub host: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Seconds since the Unix epoch when the sample started.
    pub at: u64,
    /// 1, 5 and 15 minute load averages.
    pub load: Option<[f64; 3]>,
    /// Busy CPU time over the sampling window, in percent of all CPUs.
    pub cpu: Option<f64>,
    /// Memory in use (total minus available), in percent.
    pub mem: Option<f64>,
    /// Space used on `/`, in percent.
    pub disk: Option<f64>,
    /// Backend servers seen in haproxy's stats (lb machines only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerStats>,
    /// Why the machine gave no sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One backend server as haproxy sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerStats {
    /// Backend (proxy) name.
    pub backend: String,
    /// Server name.
    pub server: String,
    /// `UP`, `DOWN`, `MAINT`, `DRAIN`, ...
    pub status: String,
    /// Requests per second over the last second.
    pub rate: u64,
    /// Requests waiting in the queue.
    pub queue: u64,
    /// Responses with a 5xx status since haproxy started.
    pub errors_5xx: u64,
    /// Connections open to the server now (haproxy's `scur`).
    pub sessions: u64,
}

impl MachineSample {
    /// A sample of a machine that did not answer.
    pub fn failed(host: String, roles: Vec<String>, at: u64, error: String) -> Self {
        MachineSample {
            host,
            roles,
            at,
            error: Some(error),
            ..Default::default()
        }
    }
}

/// Reads the output of `SAMPLE_COMMAND`; a section that is missing or garbled stays `None`.
pub fn parse(host: String, roles: Vec<String>, at: u64, stdout: &str) -> MachineSample {
    let mut sample = MachineSample {
        host,
        roles,
        at,
        ..Default::default()
    };
    let mut section = "";
    let mut cpu_lines = Vec::new();
    let mut mem_total = None;
    let mut mem_available = None;
    let mut haproxy = Vec::new();
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix('@') {
            section = name;
            continue;
        }
        match section {
            "load" => sample.load = parse_load(line),
            "cpu" => cpu_lines.push(line),
            "mem" => {
                let mut words = line.split_whitespace();
                let key = words.next();
                let value = words.next().and_then(|v| v.parse::<f64>().ok());
                match key {
                    Some("MemTotal:") => mem_total = value,
                    Some("MemAvailable:") => mem_available = value,
                    _ => {}
                }
            }
            "disk" => sample.disk = parse_df(line),
            "haproxy" => haproxy.push(line),
            _ => {}
        }
    }
    sample.cpu = match cpu_lines.split_first() {
        Some((head, rest)) if head.starts_with("procs ") => procs_busy(head, rest),
        _ => match cpu_lines[..] {
            [before, after] => cpu_busy(before, after),
            _ => None,
        },
    };
    if let (Some(total), Some(available)) = (mem_total, mem_available) {
        if total > 0.0 {
            sample.mem = Some(round1(100.0 * (total - available) / total));
        }
    }
    sample.servers = parse_haproxy(&haproxy);
    sample
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn parse_load(line: &str) -> Option<[f64; 3]> {
    let mut words = line.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([words.next()??, words.next()??, words.next()??])
}

/// Busy percent between two `cpu ...` lines of /proc/stat: idle and iowait are not busy.
fn cpu_busy(before: &str, after: &str) -> Option<f64> {
    let fields = |line: &str| -> Option<Vec<u64>> {
        let rest = line.strip_prefix("cpu ")?;
        rest.split_whitespace().map(|w| w.parse().ok()).collect()
    };
    let (a, b) = (fields(before)?, fields(after)?);
    if a.len() < 4 || a.len() != b.len() {
        return None;
    }
    // Guest times are already counted in user and nice.
    let total = |f: &[u64]| f.iter().take(8).sum::<u64>();
    let idle = |f: &[u64]| f[3] + f.get(4).copied().unwrap_or(0);
    let spent = total(&b).saturating_sub(total(&a));
    if spent == 0 {
        return Some(0.0);
    }
    let idle_spent = idle(&b).saturating_sub(idle(&a));
    Some(round1(
        100.0 * spent.saturating_sub(idle_spent) as f64 / spent as f64,
    ))
}

/// Busy percent of a container from its processes: `procs NPROC CLK_TCK`, then twice
/// `uptime SECS` followed by `pid PID TICKS` lines (user + system time of each process). A
/// process in both snapshots counts what it used in between, a new one all it used; one that
/// ended in between is not seen.
fn procs_busy(head: &str, lines: &[&str]) -> Option<f64> {
    let mut words = head.strip_prefix("procs ")?.split_whitespace();
    let cpus: f64 = words.next()?.parse().ok()?;
    let tick: f64 = words.next()?.parse().ok()?;
    let mut snapshots: Vec<(f64, std::collections::HashMap<u64, f64>)> = Vec::new();
    for line in lines {
        if let Some(at) = line.strip_prefix("uptime ") {
            snapshots.push((at.trim().parse().ok()?, Default::default()));
        } else if let (Some(rest), Some((_, ticks))) =
            (line.strip_prefix("pid "), snapshots.last_mut())
        {
            let mut parts = rest.split_whitespace().map(str::parse::<f64>);
            if let (Some(Ok(pid)), Some(Ok(used))) = (parts.next(), parts.next()) {
                ticks.insert(pid as u64, used);
            }
        }
    }
    let [(t0, before), (t1, after)] = &snapshots[..] else {
        return None;
    };
    let wall = (t1 - t0) * cpus;
    if wall <= 0.0 || tick <= 0.0 {
        return None;
    }
    let used: f64 = after
        .iter()
        .map(|(pid, t)| (t - before.get(pid).copied().unwrap_or(0.0)).max(0.0))
        .sum();
    Some(round1((100.0 * used / tick / wall).clamp(0.0, 100.0)))
}

/// `df -Pk` data line: filesystem, blocks, used, available, capacity, mount.
fn parse_df(line: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let used: f64 = words.get(2)?.parse().ok()?;
    let available: f64 = words.get(3)?.parse().ok()?;
    let total = used + available;
    (total > 0.0).then(|| round1(100.0 * used / total))
}

/// haproxy's `show stat` CSV, read by its header so field order does not matter.
fn parse_haproxy(lines: &[&str]) -> Vec<ServerStats> {
    let Some(header) = lines.iter().find_map(|l| l.strip_prefix("# ")) else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(status)) = (at("pxname"), at("svname"), at("status")) else {
        return Vec::new();
    };
    let (rate, queue, errors, sessions) = (at("rate"), at("qcur"), at("hrsp_5xx"), at("scur"));
    let number = |fields: &[&str], column: Option<usize>| -> u64 {
        column
            .and_then(|c| fields.get(c))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    lines
        .iter()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let server = *fields.get(sv)?;
            if server == "FRONTEND" || server == "BACKEND" {
                return None;
            }
            Some(ServerStats {
                backend: fields.get(px)?.to_string(),
                server: server.to_string(),
                status: fields.get(status)?.to_string(),
                rate: number(&fields, rate),
                queue: number(&fields, queue),
                errors_5xx: number(&fields, errors),
                sessions: number(&fields, sessions),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_servers_are_read_by_header() {
        let lines = [
            "# pxname,svname,qcur,status,rate,hrsp_5xx,scur",
            "web,FRONTEND,,OPEN,3,0,1",
            "app,app-1,2,UP,5,7,4",
            "app,BACKEND,0,UP,5,7,4",
        ];
        let servers = parse_haproxy(&lines);
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].server, "app-1");
        assert_eq!(
            (servers[0].queue, servers[0].rate, servers[0].errors_5xx),
            (2, 5, 7)
        );
        assert_eq!(servers[0].sessions, 4);
    }

    #[test]
    fn a_containers_cpu_is_the_time_its_processes_used_over_the_time_of_all_its_cpus() {
        // 2 CPUs, 100 ticks a second, 0.5 s: 100 ticks of room. pid 1 used 30, pid 7 is new
        // with 20, pid 9 ended.
        let out = "@cpu\nprocs 2 100\nuptime 100.00\npid 1 500\npid 9 40\nuptime 100.50\npid 1 530\npid 7 20\n";
        let sample = parse("m".into(), Vec::new(), 0, out);
        assert_eq!(sample.cpu, Some(50.0));
    }

    #[test]
    fn cpu_counts_idle_and_iowait_as_not_busy() {
        let busy = cpu_busy(
            "cpu  100 0 100 700 100 0 0 0 0 0",
            "cpu  150 0 150 800 100 0 0 0 0 0",
        );
        assert_eq!(busy, Some(50.0));
    }
}
