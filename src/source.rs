//! Source text kept for diagnostics: a name, the text, and line/column → offset conversion.

use std::sync::Arc;

use miette::NamedSource;

/// A file's name and text, cheap to clone.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: Arc<str>,
    text: Arc<str>,
}

impl SourceFile {
    /// Wraps `text` read from `name`.
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The name shown in diagnostics (a path, or `<stdlib>/...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The source in the form miette renders snippets from.
    pub fn named(&self) -> NamedSource<String> {
        NamedSource::new(&self.name, self.text.to_string())
    }

    /// The byte offset of a 1-based line and column (columns count characters), clamped to the
    /// text so a position past the end still points somewhere.
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (index, text) in self.text.split_inclusive('\n').enumerate() {
            if index + 1 == line {
                let column_bytes: usize = text
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + column_bytes;
            }
            offset += text.len();
        }
        self.text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::SourceFile;

    #[test]
    fn offsets_count_characters_within_a_line() {
        let file = SourceFile::new("x", "ab\nçd\n");
        assert_eq!(file.offset(1, 1), 0);
        assert_eq!(file.offset(2, 2), 5);
        assert_eq!(file.offset(9, 1), 7);
    }
}
