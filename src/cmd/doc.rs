//! `weft doc`: the reference of the functions scripts can call.

use miette::Result;

use crate::error::{CommandError, EXIT_OK};
use crate::script::docs;

/// Prints the reference of a topic, a function, all of them, Markdown or editor definitions.
pub fn doc(name: Option<&str>, definitions: bool, markdown: bool) -> Result<i32> {
    if definitions {
        out!("{}", docs::definitions());
        return Ok(EXIT_OK);
    }
    if markdown {
        out!("{}", docs::markdown());
        return Ok(EXIT_OK);
    }
    let all = docs::functions();
    let is_topic = name.is_some_and(|n| docs::TOPICS.iter().any(|(t, _)| *t == n));
    let shown: Vec<_> = all
        .iter()
        .filter(|f| match name {
            None => true,
            Some(n) if is_topic => docs::topic_of(&f.name) == n,
            Some(n) => f.name == n,
        })
        .collect();
    if shown.is_empty() {
        let mut names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
        names.extend(docs::TOPICS.iter().map(|(t, _)| *t));
        names.sort_unstable();
        names.dedup();
        let wanted = name.unwrap_or_default();
        return Err(CommandError::Unknown {
            kind: "function or topic",
            name: wanted.to_string(),
            help: crate::suggest::help("functions", wanted, &names),
        }
        .into());
    }
    if name.is_none() {
        let topics: Vec<&str> = docs::TOPICS.iter().map(|(t, _)| *t).collect();
        outln!("topics (weft doc TOPIC): {}\n", topics.join(", "));
    }
    for f in shown {
        outln!("{}\n", f.signature);
        for line in f.doc.lines() {
            outln!("    {line}");
        }
        outln!();
    }
    Ok(EXIT_OK)
}
