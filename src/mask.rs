//! The secrets a run knows, and text with them hidden: one set masks what weft prints, another
//! what its diagnostic log writes, by the same rules.

use std::sync::RwLock;

/// What a hidden secret turns into.
const HIDDEN: &str = "********";

/// A set of secret values hidden in every text passed through it.
#[derive(Debug, Default)]
pub struct Mask {
    secrets: RwLock<Vec<String>>,
}

impl Mask {
    /// An empty mask (usable in a `static`).
    pub const fn new() -> Self {
        Mask {
            secrets: RwLock::new(Vec::new()),
        }
    }

    /// Hides `value` from now on.
    pub fn add(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        // Output arrives line by line: each line of a multi-line secret (a key, a
        // certificate) is masked on its own too. Very short lines would mask common text.
        let lines = value.lines().map(str::trim).filter(|l| l.len() >= 8);
        // A secret with a `'` passed to a command is shown quoted (`'it'\''s'`), and quoted once
        // more inside a command that sudo or `--become` wraps: what stands between the quotes
        // is the same in any quoted text.
        let quoted = value.replace('\'', r"'\''");
        let twice = quoted.replace('\'', r"'\''");
        let forms = [value.to_string(), quoted, twice];
        for part in forms.iter().map(String::as_str).chain(lines) {
            if !secrets.iter().any(|s| s == part) {
                secrets.push(part.to_string());
            }
        }
        // Longer secrets first, so one that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every secret replaced by `********`, also in its JSON-escaped form.
    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        for secret in secrets.iter() {
            text = text.replace(secret.as_str(), HIDDEN);
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if !escaped.is_empty() {
                text = text.replace(escaped, HIDDEN);
            }
        }
        text
    }
}
