//! Positions and URIs: LSP's 0-based lines and UTF-16 columns against byte offsets, and
//! `file://` URIs against paths.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use lsp_types::{Position, Range, Uri};

/// The byte offset of `pos` in `text`, clamped to the text.
pub fn offset(text: &str, pos: Position) -> usize {
    let mut start = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if index == pos.line as usize {
            let mut units = 0u32;
            for (at, c) in line.char_indices() {
                if units >= pos.character || c == '\n' {
                    return start + at;
                }
                units += c.len_utf16() as u32;
            }
            return start + line.len();
        }
        start += line.len();
    }
    text.len()
}

/// The LSP position of the byte offset `at` in `text` (clamped, and moved back to a character
/// boundary).
pub fn position(text: &str, at: usize) -> Position {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let character: usize = before[line_start..].chars().map(char::len_utf16).sum();
    Position::new(line as u32, character as u32)
}

/// The range of the 1-based `line` and character `column` to the end of the word there.
pub fn word_range(text: &str, line: usize, column: usize) -> Range {
    let line_text = text.lines().nth(line.saturating_sub(1)).unwrap_or_default();
    let skip = column.saturating_sub(1);
    let start: usize = line_text.chars().take(skip).map(char::len_utf16).sum();
    let word: usize = line_text
        .chars()
        .skip(skip)
        .take_while(|c| is_word(*c))
        .map(char::len_utf16)
        .sum();
    let line = line.saturating_sub(1) as u32;
    Range::new(
        Position::new(line, start as u32),
        Position::new(line, (start + word.max(1)) as u32),
    )
}

/// The whole of the 1-based `line`.
pub fn line_range(text: &str, line: usize) -> Range {
    let line_text = text.lines().nth(line.saturating_sub(1)).unwrap_or_default();
    let end: usize = line_text.chars().map(char::len_utf16).sum();
    let line = line.saturating_sub(1) as u32;
    Range::new(Position::new(line, 0), Position::new(line, end as u32))
}

/// Whether `c` belongs to an identifier.
pub fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The word that `text` ends with (empty when it ends with anything else).
pub fn trailing_word(text: &str) -> String {
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(text.len(), |(i, _)| i);
    text[start..].to_string()
}

/// The identifier at or just before `pos`.
pub fn word_at(text: &str, pos: Position) -> Option<String> {
    let at = offset(text, pos);
    let start = text[..at]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(at, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(text.len(), |(i, _)| at + i);
    let word = &text[start..end];
    (!word.is_empty()).then(|| word.to_string())
}

/// The content of the string literal `pos` is in, on its line.
pub fn string_at(text: &str, pos: Position) -> Option<String> {
    let at = offset(text, pos);
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = &text[start..end];
    let cursor = at - start;
    let quotes: Vec<usize> = line.match_indices('"').map(|(i, _)| i).collect();
    quotes
        .chunks(2)
        .find(|pair| pair.len() == 2 && pair[0] < cursor && cursor <= pair[1])
        .map(|pair| line[pair[0] + 1..pair[1]].to_string())
}

/// The text of `pos`'s line before it.
pub fn line_prefix(text: &str, pos: Position) -> &str {
    let at = offset(text, pos);
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    &text[start..at]
}

/// The path of a `file://` URI.
pub fn path_of(uri: &Uri) -> Option<PathBuf> {
    let rest = uri.as_str().strip_prefix("file://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

/// The `file://` URI of an absolute `path`.
pub fn uri_of(path: &Path) -> Option<Uri> {
    let mut out = String::from("file://");
    for b in path.to_str()?.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_positions_agree() {
        let text = "ab\nçd€f\n";
        let pos = Position::new(1, 2);
        assert_eq!(offset(text, pos), 3 + "çd".len());
        assert_eq!(position(text, offset(text, pos)), pos);
        assert_eq!(offset(text, Position::new(9, 9)), text.len());
        assert_eq!(offset(text, Position::new(0, 99)), 2);
    }

    #[test]
    fn words_and_uris() {
        let text = "host.packages([])";
        assert_eq!(
            word_at(text, Position::new(0, 7)).as_deref(),
            Some("packages")
        );
        let uri = uri_of(Path::new("/tmp/a b/x.rhai")).expect("uri");
        assert_eq!(uri.as_str(), "file:///tmp/a%20b/x.rhai");
        assert_eq!(path_of(&uri), Some(PathBuf::from("/tmp/a b/x.rhai")));
    }

    #[test]
    fn any_position_a_client_sends_is_safe() {
        let text = "fn é(host) {\r\n  host.file(\"ü😀\", #{ mode: \"0\" });\n\t\"\n}";
        for line in 0..6 {
            for character in 0..40 {
                let pos = Position::new(line, character);
                let _ = (
                    word_at(text, pos),
                    string_at(text, pos),
                    line_prefix(text, pos),
                );
                assert!(text.is_char_boundary(offset(text, pos)));
            }
        }
        for at in 0..text.len() + 3 {
            let _ = position(text, at);
        }
    }
}
