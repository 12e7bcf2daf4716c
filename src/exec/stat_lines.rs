//! Stat lines of a host's known files, read together: the first check of a file whose sum
//! weft keeps (`exec::remote_sums`) stats the others too, in the same command, so a goal that
//! manages many files that did not change costs the host one `stat` for all of them.
//!
//! A line is only good while nothing on the host has run since it was read: any command or
//! write of the session (other than these checks) drops every line not yet used, and the
//! next check reads again. A line is used once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// How many files one read stats at most: the kept shell reads a command a byte at a time,
/// so a long list would cost more than the checks it saves.
pub const MAX_FILES: usize = 32;

/// The stat lines one session read ahead.
#[derive(Default)]
pub struct StatLines(Mutex<State>);

#[derive(Default)]
struct State {
    /// Path → its stat line, `None` when it was missing.
    lines: HashMap<String, Option<String>>,
    /// Paths whose line was used (or read and then dropped unused: read again if asked).
    used: HashSet<String>,
}

impl StatLines {
    /// The line read ahead for `path` (`Some(None)`: it was missing), once.
    pub fn take(&self, path: &str) -> Option<Option<String>> {
        let mut state = self.lock();
        let line = state.lines.remove(path)?;
        state.used.insert(path.to_string());
        Some(line)
    }

    /// Of `candidates`, the paths worth reading now: not used yet this session nor waiting
    /// with a line, without a newline (a line per file), at most `MAX_FILES`, `first` first;
    /// none when `first` has a newline itself.
    pub fn wanted(&self, first: &str, candidates: Vec<String>) -> Vec<String> {
        if first.contains('\n') {
            return Vec::new();
        }
        let state = self.lock();
        let mut paths = vec![first.to_string()];
        paths.extend(
            candidates
                .into_iter()
                .filter(|p| p != first && !p.contains('\n'))
                .filter(|p| !state.used.contains(p) && !state.lines.contains_key(p)),
        );
        paths.truncate(MAX_FILES);
        paths
    }

    /// Keeps what one `stat -c '<format>|%n' -- <paths>` printed: a path without a line is
    /// missing.
    pub fn fill(&self, paths: &[String], stdout: &str, fields: usize) {
        let mut found: HashMap<&str, &str> = HashMap::new();
        for line in stdout.lines() {
            // The name is last and may hold the separator itself.
            let mut parts = line.splitn(fields + 1, '|');
            let head_len: usize = parts.by_ref().take(fields).map(|p| p.len() + 1).sum();
            if let (Some(name), Some(head)) = (parts.next(), line.get(..head_len.saturating_sub(1)))
            {
                found.insert(name, head);
            }
        }
        let mut state = self.lock();
        for path in paths {
            let line = found.get(path.as_str()).map(|l| l.to_string());
            state.lines.insert(path.clone(), line);
        }
    }

    /// Something ran on the host: no line read so far can be trusted.
    pub fn drop_all(&self) {
        self.lock().lines.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_matched_to_their_paths_used_once_and_dropped_by_a_command() {
        let lines = StatLines::default();
        let paths = lines.wanted(
            "/b",
            vec!["/a".into(), "/b".into(), "/x|y".into(), "/n\nl".into()],
        );
        assert_eq!(paths, ["/b", "/a", "/x|y"]);
        assert!(lines.wanted("/n\nl", vec!["/a".into()]).is_empty());
        lines.fill(
            &paths,
            "regular file|644|a|b|1|2|3|4|5|6|/a\nregular file|600|a|b|1|2|3|4|5|7|/x|y\n",
            10,
        );
        assert_eq!(
            lines.take("/a"),
            Some(Some("regular file|644|a|b|1|2|3|4|5|6".into()))
        );
        assert_eq!(lines.take("/a"), None, "a line is used once");
        assert_eq!(lines.take("/b"), Some(None), "no line: missing");
        lines.drop_all();
        assert_eq!(lines.take("/x|y"), None, "dropped by a command");
        // A line still waiting is not read again.
        lines.fill(&["/w".to_string()], "", 10);
        assert_eq!(lines.wanted("/v", vec!["/w".into()]), ["/v"]);
        // What was used is not read again; what was dropped unused is.
        assert_eq!(
            lines.wanted("/c", vec!["/a".into(), "/x|y".into()]),
            ["/c", "/x|y"]
        );
    }
}
