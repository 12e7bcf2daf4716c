//! POSIX shell quoting: every argument weft puts in a command line goes through here; and
//! the lines that enter a folder on a host without following another user's link.

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

/// The shell lines that define `weft_enter FOLDER [make]`, which enters `FOLDER` one name at
/// a time (from `/`, or from where the command is for a relative path), never through a link
/// that another user could change: a link is followed only when root or the user the command
/// runs as owns it, and each name entered must be the folder (device and inode) that was looked
/// at, so a link swapped in meanwhile fails rather than leads elsewhere. With `make`, missing
/// folders are made (as `mkdir -p` would, but by name in the folder entered). `cd -P` into a
/// path would follow a link planted by whoever owns any folder on the way (`/home/u/x` made a
/// link to `/etc`), and every later name would be taken from there.
fn enter_function() -> &'static str {
    // A plain folder costs no process: after `cd -P` the shell's `$PWD` is the physical path,
    // which must be the one looked at plus the name (a link swapped in leads elsewhere). Only
    // a link forks, for its owner and its target's identity. A folder that another run makes
    // at the same moment is no error (`mkdir -p` is none either).
    r#"weft_enter() {
  weft_rest=$1
  case $1 in /*) weft_at= ; cd / || return 1 ;; *) weft_at=. ; cd -P . || return 1 ;; esac
  while [ -n "$weft_rest" ]; do
    weft_name=${weft_rest%%/*}
    case $weft_rest in */*) weft_rest=${weft_rest#*/} ;; *) weft_rest= ;; esac
    case $weft_name in
      '' | .) continue ;;
      ..) echo "weft: $1: a path with .. is not entered (its folder could be moved meanwhile)" >&2; return 1 ;;
    esac
    weft_at=$weft_at/$weft_name
    if [ -n "$2" ] && [ ! -e "$weft_name" ] && [ ! -L "$weft_name" ]; then
      mkdir -- "$weft_name" 2>/dev/null || [ -d "$weft_name" ] || mkdir -- "$weft_name" || return 1
    fi
    if [ -L "$weft_name" ]; then
      weft_by=$(stat -c %u -- "$weft_name") || return 1
      if [ "$weft_by" != 0 ] && [ "$weft_by" != "$(id -u)" ]; then
        echo "weft: $weft_at is a symbolic link of user $weft_by: weft follows no link that another user could change (it could lead to any folder of the host)" >&2
        return 1
      fi
      weft_want=$(stat -L -c %d:%i -- "$weft_name") || return 1
      { cd -P -- "$weft_name" 2>/dev/null && [ "$(stat -c %d:%i .)" = "$weft_want" ]; } || {
        echo "weft: $weft_at is not a folder, or was replaced while weft entered it" >&2
        return 1
      }
    else
      case $PWD in /) weft_want=/$weft_name ;; *) weft_want=$PWD/$weft_name ;; esac
      { cd -P -- "$weft_name" 2>/dev/null && [ "$PWD" = "$weft_want" ]; } || {
        echo "weft: $weft_at is not a folder, or was replaced while weft entered it" >&2
        return 1
      }
    fi
  done
}
"#
}

/// `command` as the `-v` log shows it: without the text of `weft_enter`'s definition, the
/// same forty lines in every command of weft's that acts inside a folder; its calls stay.
pub fn shown(command: &str) -> std::borrow::Cow<'_, str> {
    if command.contains(enter_function()) {
        command.replace(enter_function(), "").into()
    } else {
        command.into()
    }
}

/// Shell lines that enter `folder` as `weft_enter` does (making missing folders with
/// `make`); what follows them with `&&` runs inside it.
pub fn enter(folder: &str, make: bool) -> String {
    format!(
        "{}weft_enter {}{}",
        enter_function(),
        quote(folder),
        if make { " make" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_shows_weft_enter_called_not_defined() {
        let command = format!("{} && pwd -P", enter("/etc/app", false));
        assert_eq!(shown(&command), "weft_enter /etc/app && pwd -P");
        assert_eq!(shown("uname -sr"), "uname -sr");
    }

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
