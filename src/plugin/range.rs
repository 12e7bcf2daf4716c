//! The `weft = ">=0.3, <0.5"` version ranges of `plugin.toml`.

use std::cmp::Ordering;

/// A version as three numbers.
type Version = [u64; 3];

/// Whether `version` lies in `range`; `Err` names the part of `range` that does not parse.
pub fn matches(range: &str, version: &str) -> Result<bool, String> {
    let version = parse_version(version.split(['-', '+']).next().unwrap_or(version))
        .ok_or_else(|| version.to_string())?;
    for part in range.split(',').map(str::trim) {
        if part.is_empty() || part == "*" {
            continue;
        }
        if !comparator(part, version).ok_or_else(|| part.to_string())? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn comparator(part: &str, version: Version) -> Option<bool> {
    let ops = [">=", "<=", ">", "<", "=", "^", "~"];
    let (op, rest) = ops
        .iter()
        .find_map(|op| part.strip_prefix(op).map(|rest| (*op, rest)))
        .unwrap_or(("^", part));
    let rest = rest.trim();
    let given = rest.split('.').count();
    let bound = parse_version(rest)?;
    let cmp = version.cmp(&bound);
    Some(match op {
        ">=" => cmp != Ordering::Less,
        "<=" => cmp != Ordering::Greater,
        ">" => cmp == Ordering::Greater,
        "<" => cmp == Ordering::Less,
        "=" => cmp == Ordering::Equal,
        "~" => cmp != Ordering::Less && version < tilde_upper(bound, given),
        _ => cmp != Ordering::Less && version < caret_upper(bound, given),
    })
}

/// The first version `^bound` excludes: the next change of its leftmost non-zero number.
fn caret_upper(bound: Version, given: usize) -> Version {
    match bound {
        [0, 0, patch] if given >= 3 => [0, 0, patch + 1],
        [0, minor, _] if given >= 2 => [0, minor + 1, 0],
        [major, _, _] => [major + 1, 0, 0],
    }
}

/// The first version `~bound` excludes: the next minor, or the next major when only that is given.
fn tilde_upper(bound: Version, given: usize) -> Version {
    if given >= 2 {
        [bound[0], bound[1] + 1, 0]
    } else {
        [bound[0] + 1, 0, 0]
    }
}

fn parse_version(text: &str) -> Option<Version> {
    let mut out = [0; 3];
    let mut count = 0;
    for (i, part) in text.trim().split('.').enumerate() {
        *out.get_mut(i)? = part.parse().ok()?;
        count += 1;
    }
    (count > 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn ranges_include_and_exclude() {
        assert_eq!(matches(">=0.1, <0.3", "0.2.5"), Ok(true));
        assert_eq!(matches(">=0.1, <0.3", "0.3.0"), Ok(false));
        assert_eq!(matches("^0.2", "0.2.9"), Ok(true));
        assert_eq!(matches("^0.2", "0.3.0"), Ok(false));
        assert_eq!(matches("^1.2", "1.9.0"), Ok(true));
        assert_eq!(matches("~1.2", "1.3.0"), Ok(false));
        assert_eq!(matches("*", "7.0.0"), Ok(true));
        assert_eq!(matches(">= banana", "0.1.0"), Err(">= banana".into()));
    }
}
