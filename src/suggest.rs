//! "Did you mean" suggestions for unknown names.

/// The known names closest to `wanted`, best first (at most three).
pub fn closest<'a>(wanted: &str, known: &[&'a str]) -> Vec<&'a str> {
    // Few edits (typos, swapped letters) or a shared stem both count as close.
    let max_edits = (wanted.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, f64, &str)> = known
        .iter()
        .map(|name| {
            let edits = strsim::damerau_levenshtein(wanted, name);
            (edits, strsim::jaro_winkler(wanted, name), *name)
        })
        .filter(|(edits, similarity, name)| {
            *edits <= max_edits || *similarity > 0.85 || name.contains(wanted)
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(b.2)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, _, name)| name)
        .collect()
}

/// A help line naming the closest matches, or listing what exists when nothing is close.
pub fn help(kind: &str, wanted: &str, known: &[&str]) -> Option<String> {
    let close = closest(wanted, known);
    if !close.is_empty() {
        return Some(format!("did you mean {}?", backticked(&close, " or ")));
    }
    if known.is_empty() {
        return Some(format!("there are no {kind}"));
    }
    let mut sorted = known.to_vec();
    sorted.sort_unstable();
    Some(format!("known {kind}: {}", backticked(&sorted, ", ")))
}

fn backticked(names: &[&str], sep: &str) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggests_the_near_name() {
        let known = ["hello_deploy", "hello_status", "nginx_reload"];
        assert_eq!(closest("helo_deploy", &known)[0], "hello_deploy");
        assert_eq!(
            help("goals", "xyz", &["b", "a"]).as_deref(),
            Some("known goals: `a`, `b`")
        );
    }
}
