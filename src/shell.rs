//! POSIX shell quoting: every argument weft puts in a command line goes through here.

/// Quotes `arg` so a POSIX shell reads it back as one word, unchanged.
pub fn quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Joins `args` into a command line, each argument quoted.
pub fn join<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_sh() {
        let nasty = [
            "plain",
            "",
            "two words",
            "it's",
            "$(rm -rf /)",
            "a\nb",
            "*",
            "\\",
        ];
        let line = format!("printf '%s\\0' {}", join(&nasty));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("sh runs");
        let words: Vec<&str> = std::str::from_utf8(&out.stdout)
            .expect("utf8")
            .split_terminator('\0')
            .collect();
        assert_eq!(words, nasty);
    }
}
