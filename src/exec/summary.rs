//! The end-of-run summary at scale: with more than `MANY_HOSTS` hosts, hosts are grouped by
//! outcome and error (`12 unreachable: cannot connect to <host>: Connection refused`) and
//! named in a wrapped list, instead of one line per host. Errors that differ only in the
//! host's name or address are one error. It imports nothing of weft's: `exec::output` hands
//! it each host's end as plain values.

use std::fmt::Write as _;
use std::time::Duration;

/// Above this many hosts in a run, the summary groups them and the live output holds back
/// each host's changes and output (`-v` shows them).
pub const MANY_HOSTS: usize = 10;

/// How many names a failed or unreachable group lists; other groups list `NAMED_OTHERS`.
const NAMED_FAILURES: usize = 50;
const NAMED_OTHERS: usize = 10;
/// Where the lists of names wrap.
const WIDTH: usize = 100;
/// What stands for a host's own name or address in a shared error.
const HOST: &str = "<host>";

/// How one host's run ended, as the summary shows it.
#[derive(Debug, Clone)]
pub struct Ended<'a> {
    /// The host's name.
    pub host: &'a str,
    /// Its status in this run's words (`ok`, `changed`, `would change`, `unreachable`, ...).
    pub status: &'a str,
    /// Where that status comes in the summary (its title's order).
    pub rank: usize,
    /// Whether it failed or was unreachable: its group names more hosts.
    pub failure: bool,
    /// The error's one line, when it has one.
    pub error: Option<&'a str>,
    /// How many changes it made.
    pub changes: usize,
    /// Its wall time.
    pub duration: Duration,
}

/// Hosts that ended alike.
struct Group<'a, 'e> {
    /// The error with the host's name and addresses generalized: what groups them.
    key: Option<String>,
    hosts: Vec<&'e Ended<'a>>,
}

/// The lines after the summary's title, for `ended`, one host each.
pub fn grouped(ended: &[Ended]) -> String {
    let mut groups: Vec<Group> = Vec::new();
    for e in ended {
        let key = e.error.map(|error| generalize(error, e.host));
        let same = |g: &Group| g.hosts[0].rank == e.rank && g.hosts[0].status == e.status;
        match groups.iter_mut().find(|g| same(g) && g.key == key) {
            Some(group) => group.hosts.push(e),
            None => groups.push(Group {
                key,
                hosts: vec![e],
            }),
        }
    }
    // Stable: within a status, the largest group first, else in order of first appearance.
    groups.sort_by(|a, b| {
        a.hosts[0]
            .rank
            .cmp(&b.hosts[0].rank)
            .then(b.hosts.len().cmp(&a.hosts.len()))
    });
    let mut text = String::new();
    for group in &groups {
        let n = group.hosts.len();
        let _ = write!(text, "\n  {n} {}", group.hosts[0].status);
        match &group.key {
            Some(key) => {
                // The host's own words when every host of the group had them.
                let first = group.hosts[0].error.unwrap_or_default();
                let same = group.hosts.iter().all(|e| e.error == Some(first));
                let _ = write!(text, ": {}", if same { first } else { key });
            }
            None => {
                let changes: usize = group.hosts.iter().map(|e| e.changes).sum();
                match changes {
                    0 => {}
                    1 => text.push_str(" (1 change)"),
                    n => {
                        let _ = write!(text, " ({n} changes)");
                    }
                }
                // The first of the slowest: `max_by_key` keeps the last, so from the end.
                if let Some(slowest) = group.hosts.iter().rev().max_by_key(|e| e.duration) {
                    let _ = write!(
                        text,
                        ", slowest {} ({:.2}s)",
                        slowest.host,
                        slowest.duration.as_secs_f64()
                    );
                }
            }
        }
        let named = if group.hosts[0].failure {
            NAMED_FAILURES
        } else {
            NAMED_OTHERS
        };
        let names: Vec<&str> = group.hosts.iter().map(|e| e.host).collect();
        text.push_str(&wrap(&names, named));
    }
    text
}

/// `names` as lines of at most `WIDTH` columns indented by 6, the first `limit` of them and
/// then `and K more`.
fn wrap(names: &[&str], limit: usize) -> String {
    const INDENT: &str = "      ";
    let mut lines = String::new();
    let mut line = String::from(INDENT);
    let shown = names.len().min(limit);
    let mut words: Vec<String> = names[..shown]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if i + 1 < shown {
                format!("{name},")
            } else {
                name.to_string()
            }
        })
        .collect();
    if names.len() > shown {
        words.push(format!("and {} more", names.len() - shown));
    }
    for word in words {
        if line.len() > INDENT.len() && line.len() + 1 + word.len() > WIDTH {
            lines.push('\n');
            lines.push_str(&line);
            line = String::from(INDENT);
        }
        if line.len() > INDENT.len() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if line.len() > INDENT.len() {
        lines.push('\n');
        lines.push_str(&line);
    }
    lines
}

/// `error` with the words that name `host` (its name, or an address: `user@addr:port`,
/// `addr:port`, an IP) replaced by `<host>`, so the same failure on many hosts is one error.
pub fn generalize(error: &str, host: &str) -> String {
    let named = replace_name(error, host);
    named
        .split(' ')
        .map(|word| {
            let core = word
                .trim_start_matches(['`', '\'', '"', '('])
                .trim_end_matches(['`', '\'', '"', ')', ',', ';', ':', '.']);
            if !core.is_empty() && core != HOST && is_address(core) {
                word.replacen(core, HOST, 1)
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with each whole occurrence of `name` (not inside a longer name) replaced by `<host>`;
/// names shorter than 3 characters are left, they would match ordinary words.
fn replace_name(text: &str, name: &str) -> String {
    if name.chars().count() < 3 {
        return text.to_string();
    }
    let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in text.match_indices(name) {
        let before = text[..at].chars().last();
        let after = text[at + name.len()..].chars().next();
        out.push_str(&text[last..at]);
        out.push_str(if part(before) || part(after) {
            name
        } else {
            HOST
        });
        last = at + name.len();
    }
    out.push_str(&text[last..]);
    out
}

/// Whether `word` is an SSH address: `user@host[:port]`, `name.domain:port`, `[addr]:port` or
/// an IP (a bare `x:1` is not: it is more often part of a command).
fn is_address(word: &str) -> bool {
    let (user, rest) = match word.rsplit_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, word),
    };
    let hostlike = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if rest.parse::<std::net::IpAddr>().is_ok() || rest.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    if let Some(inner) = rest.strip_prefix('[') {
        let (addr, port) = inner.split_once(']').unwrap_or((inner, ""));
        let port_ok = port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        return !addr.is_empty() && port_ok;
    }
    let with_port = rest.rsplit_once(':').is_some_and(|(host, port)| {
        hostlike(host)
            && (user.is_some() || host.contains('.'))
            && !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
    });
    let user_ok = user.is_some_and(hostlike);
    with_port || (user_ok && hostlike(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned hosts' ends, borrowed by `Ended`.
    type Owned = (String, &'static str, Option<String>, u64);

    fn outcome(host: &str, status: &'static str, error: Option<&str>, ms: u64) -> Owned {
        (host.to_string(), status, error.map(str::to_string), ms)
    }

    fn ended(owned: &[Owned]) -> Vec<Ended<'_>> {
        let order = [
            "ok",
            "changed",
            "would change",
            "failed",
            "unreachable",
            "skipped",
        ];
        owned
            .iter()
            .map(|(host, status, error, ms)| Ended {
                host,
                status,
                rank: order.iter().position(|s| s == status).unwrap_or(0),
                failure: matches!(*status, "failed" | "unreachable"),
                error: error.as_deref(),
                changes: if status.contains("change") { 2 } else { 0 },
                duration: Duration::from_millis(*ms),
            })
            .collect()
    }

    #[test]
    fn many_hosts_group_by_outcome_and_error_with_their_names() {
        let mut outcomes = Vec::new();
        for i in 0..185 {
            outcomes.push(outcome(&format!("app-{i}"), "ok", None, 100 + i));
        }
        for i in 0..3 {
            outcomes.push(outcome(&format!("web-{i}"), "changed", None, 200));
        }
        for i in 0..12 {
            let address = format!("root@10.0.0.{i}:22");
            outcomes.push(outcome(
                &format!("db-{i}"),
                "unreachable",
                Some(&format!(
                    "cannot connect to {address}: Connection timed out (os error 110)"
                )),
                2000,
            ));
        }
        outcomes.push(outcome(
            "db-12",
            "unreachable",
            Some("db-12: no answer to the SSH handshake within 2s"),
            2000,
        ));
        for i in 0..2 {
            outcomes.push(outcome(
                &format!("cache-{i}"),
                "failed",
                Some("`systemctl restart redis` exited with 1"),
                300,
            ));
        }
        let text = grouped(&ended(&outcomes));
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines[0], "  185 ok, slowest app-184 (0.28s)", "{text}");
        assert_eq!(
            lines[1],
            "      app-0, app-1, app-2, app-3, app-4, app-5, app-6, app-7, app-8, app-9 and 175 more"
        );
        assert_eq!(lines[2], "  3 changed (6 changes), slowest web-0 (0.20s)");
        assert_eq!(lines[3], "      web-0, web-1, web-2");
        assert_eq!(
            lines[4],
            "  2 failed: `systemctl restart redis` exited with 1"
        );
        assert_eq!(lines[5], "      cache-0, cache-1");
        assert_eq!(
            lines[6],
            "  12 unreachable: cannot connect to <host>: Connection timed out (os error 110)"
        );
        assert_eq!(
            lines[7],
            "      db-0, db-1, db-2, db-3, db-4, db-5, db-6, db-7, db-8, db-9, db-10, db-11"
        );
        assert_eq!(
            lines[8],
            "  1 unreachable: db-12: no answer to the SSH handshake within 2s"
        );
        assert_eq!(lines[9], "      db-12");
        assert_eq!(lines.len(), 10);
        // Every line fits in the width.
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
    }

    #[test]
    fn a_long_failed_group_wraps_and_names_fifty() {
        let outcomes: Vec<Owned> = (0..120)
            .map(|i| {
                let host = format!("root@127.0.0.1:{}", 40000 + i);
                let error = format!("cannot connect to {host}: Connection refused (os error 111)");
                outcome(&host, "unreachable", Some(&error), 10)
            })
            .collect();
        let text = grouped(&ended(&outcomes));
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines[0],
            "  120 unreachable: cannot connect to <host>: Connection refused (os error 111)"
        );
        let names = lines[1..].join(" ");
        assert_eq!(names.matches("root@127.0.0.1:").count(), 50);
        assert!(
            names.ends_with("root@127.0.0.1:40049 and 70 more"),
            "{names}"
        );
        assert!(lines.len() > 3 && lines[1..].iter().all(|l| l.len() <= WIDTH));
    }

    #[test]
    fn check_runs_say_would_change() {
        let outcomes: Vec<Owned> = (0..11)
            .map(|i| outcome(&format!("h{i}"), "would change", None, 10))
            .collect();
        let text = grouped(&ended(&outcomes));
        assert!(
            text.starts_with("\n  11 would change (22 changes), slowest h0"),
            "{text}"
        );
    }

    #[test]
    fn errors_lose_the_host_name_and_addresses_only() {
        let g = |e: &str, h: &str| generalize(e, h);
        assert_eq!(
            g("cannot connect to weft@10.1.2.3:2222: refused", "app-1"),
            "cannot connect to <host>: refused"
        );
        assert_eq!(g("[10.0.0.7]:22: no answer", "x"), "<host>: no answer");
        assert_eq!(g("[::1]:22: no answer", "x"), "<host>: no answer");
        assert_eq!(
            g("the file /srv/app-1/conf failed on app-1.", "app-1"),
            "the file /srv/<host>/conf failed on <host>."
        );
        // A longer name that starts with the host's is another host.
        assert_eq!(g("app-10 is down", "app-1"), "app-10 is down");
        assert_eq!(
            g("`grep -q x:1 f` exited with 1", "h"),
            "`grep -q x:1 f` exited with 1"
        );
        assert_eq!(g("web.example.com:22 refused", "w"), "<host> refused");
    }
}
