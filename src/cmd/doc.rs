//! `weft doc`: the reference of the functions scripts can call.

use miette::Result;

use crate::error::{CommandError, EXIT_OK};
use crate::script::docs;

/// Prints the reference of one function, of all, or the editor definitions.
pub fn doc(name: Option<&str>, definitions: bool) -> Result<i32> {
    if definitions {
        print!("{}", docs::definitions());
        return Ok(EXIT_OK);
    }
    let all = docs::functions();
    let shown: Vec<_> = all
        .iter()
        .filter(|f| name.is_none_or(|n| f.name == n))
        .collect();
    if shown.is_empty() {
        let mut names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
        names.dedup();
        let wanted = name.unwrap_or_default();
        return Err(CommandError::Unknown {
            kind: "function",
            name: wanted.to_string(),
            help: crate::suggest::help("functions", wanted, &names),
        }
        .into());
    }
    for f in shown {
        println!("{}\n", f.signature);
        for line in f.doc.lines() {
            println!("    {line}");
        }
        println!();
    }
    Ok(EXIT_OK)
}
