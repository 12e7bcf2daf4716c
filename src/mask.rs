//! The secrets a run knows, and text with them hidden: one set masks what weft prints, another
//! what its diagnostic log writes, by the same rules.
//!
//! A secret shorter than [`SHORT`] characters is hidden only where it stands as a whole word
//! (no letter, digit or `_` right before or after it): hidden everywhere, `y` would turn
//! `summary` into `summar********` and make a run's own words unreadable (issue 31).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// What a hidden secret turns into.
pub const HIDDEN: &str = "********";

/// Secrets with fewer characters than this are hidden as whole words only, and weak.
pub const SHORT: usize = 6;

/// One text to hide, and whether only as a whole word.
#[derive(Debug)]
struct Hidden {
    text: String,
    whole_word: bool,
}

/// A set of secret values hidden in every text passed through it.
#[derive(Debug, Default)]
pub struct Mask {
    secrets: RwLock<Vec<Hidden>>,
    warned_short: AtomicBool,
}

impl Mask {
    /// An empty mask (usable in a `static`).
    pub const fn new() -> Self {
        Mask {
            secrets: RwLock::new(Vec::new()),
            warned_short: AtomicBool::new(false),
        }
    }

    /// Hides `value` from now on. Returns `true` the first time this mask is given a
    /// secret shorter than [`SHORT`] characters, so that the caller warns once.
    pub fn add(&self, value: &str) -> bool {
        if value.is_empty() {
            return false;
        }
        let short = value.chars().count() < SHORT;
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
            if !secrets.iter().any(|s| s.text == part) {
                secrets.push(Hidden {
                    text: part.to_string(),
                    whole_word: short,
                });
            }
        }
        // Longer secrets first, so one that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
        short && !self.warned_short.swap(true, Ordering::Relaxed)
    }

    /// Whether `text` holds any secret anywhere, also inside a word: what decides that a
    /// command must keep its text out of argv. Only showing a short secret is whole-word.
    pub fn contains(&self, text: &str) -> bool {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        secrets.iter().any(|s| text.contains(s.text.as_str()))
    }

    /// `text` with every secret replaced by `********`, also in its JSON-escaped form.
    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        for secret in secrets.iter() {
            let escaped = serde_json::to_string(&secret.text).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            for form in [secret.text.as_str(), escaped] {
                if form.is_empty() {
                    continue;
                }
                text = if secret.whole_word {
                    replace_words(&text, form)
                } else {
                    text.replace(form, HIDDEN)
                };
            }
        }
        text
    }
}

/// The warning for a secret shorter than [`SHORT`] characters (never the secret itself).
pub fn short_warning() -> String {
    format!(
        "warning: a secret is shorter than {SHORT} characters: it is weak, and weft hides it \
         only where it stands as a whole word (with {SHORT} or more, everywhere it appears)"
    )
}

/// Whether `c` continues a word: a match next to one is part of a longer word.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with each occurrence of `word` that no word character touches replaced.
fn replace_words(text: &str, word: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let start = from + found;
        let end = start + word.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        let alone = !before.is_some_and(is_word) && !after.is_some_and(is_word);
        if alone {
            out.push_str(&text[rest..start]);
            out.push_str(HIDDEN);
            rest = end;
            from = end;
        } else {
            // Step one character on: a later match may overlap this one.
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_short_secret_inside_a_word_is_shown_but_still_counts_as_held() {
        let mask = Mask::new();
        mask.add("pw1");
        // `mysql -ppw1`: shown as written (a whole-word rule), but the command holds the
        // secret, so it must stay out of argv.
        assert_eq!(mask.apply("mysql -ppw1"), "mysql -ppw1");
        assert!(mask.contains("mysql -ppw1"));
        assert!(!mask.contains("mysql -p"));
    }
    use super::*;

    fn masked(secrets: &[&str], text: &str) -> String {
        let mask = Mask::new();
        for s in secrets {
            mask.add(s);
        }
        mask.apply(text)
    }

    #[test]
    fn a_long_secret_is_hidden_everywhere_even_inside_words() {
        assert_eq!(
            masked(&["hunter22"], "pw=hunter22 xhunter22y"),
            "pw=******** x********y"
        );
    }

    #[test]
    fn a_short_secret_leaves_words_that_contain_it_alone() {
        assert_eq!(
            masked(&["y"], "summary: 3 ok, yes y"),
            "summary: 3 ok, yes ********"
        );
    }

    #[test]
    fn a_short_secret_is_hidden_where_it_stands_alone() {
        assert_eq!(
            masked(&["y"], "REDIS_URL=redis://:y@10.0.0.1:6379/0"),
            "REDIS_URL=redis://:********@10.0.0.1:6379/0"
        );
        assert_eq!(masked(&["abc"], "abc"), "********");
        assert_eq!(
            masked(&["abc"], "(abc) abcabc abc."),
            "(********) abcabc ********."
        );
        assert_eq!(masked(&["ab"], "xab ab_ ab-"), "xab ab_ ********-");
    }

    #[test]
    fn a_short_secret_overlapping_a_word_is_still_found_after_it() {
        assert_eq!(masked(&["aa"], "aaa aa"), "aaa ********");
    }

    #[test]
    fn the_length_counts_characters_not_bytes() {
        // Five characters, ten bytes: short.
        assert_eq!(masked(&["ééééé"], "xééééé ééééé"), "xééééé ********");
        // Six characters: hidden everywhere.
        assert_eq!(masked(&["éééééé"], "xéééééé"), "x********");
    }

    #[test]
    fn a_short_secret_in_its_json_escaped_form_is_hidden_as_a_word() {
        assert_eq!(masked(&["a\"b"], r#"{"p":"a\"b"}"#), r#"{"p":"********"}"#);
    }

    #[test]
    fn only_the_first_short_secret_asks_for_a_warning() {
        let mask = Mask::new();
        assert!(!mask.add("long enough"));
        assert!(mask.add("y"));
        assert!(!mask.add("z"));
        assert!(!mask.add(""));
    }
}
