//! `user@host:port` addresses as written in inventories and on the command line.

use std::fmt;

/// Where to connect: a host with an optional user and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The login user, when given.
    pub user: Option<String>,
    /// A host name or address (IPv6 without brackets).
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
}

impl Target {
    /// Parses `[user@]host[:port]`, with IPv6 hosts in brackets (`[::1]:22`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
            Some(_) => return Err(format!("`{text}` has an empty user before `@`")),
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("`{text}` opens `[` without closing it"))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((host, port)) if !port.contains(':') => (host, Some(port)),
                Some(_) => (rest, None),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| format!("`{p}` in `{text}` is not a port"))
            })
            .transpose()?;
        Ok(Target {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// Whether `text` reads as an address rather than an inventory name.
    pub fn looks_like_address(text: &str) -> bool {
        text.contains('@') || text.contains(':') || text.contains('.') || text == "localhost"
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn parses_users_ports_and_ipv6() {
        let t = Target::parse("root@127.0.0.1:2201").expect("parse");
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port),
            (Some("root"), "127.0.0.1", Some(2201))
        );
        let t = Target::parse("[::1]:22").expect("parse");
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(22)));
        let t = Target::parse("web-1").expect("parse");
        assert_eq!((t.user, t.port), (None, None));
        assert!(Target::parse("a@b:notaport").is_err());
        assert_eq!(Target::parse("u@h:1").expect("parse").to_string(), "u@h:1");
    }
}
