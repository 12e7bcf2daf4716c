//! The goals of the open buffers: a project script being edited defines the goals of its
//! unsaved text, in place of those its file on disk defines, for completion, hover,
//! workspace symbols and definitions. Disk is read again only on save.

use std::path::Path;

use lsp_types::{Location, Uri};

use super::{text, Server};
use crate::index::FnOutline;
use crate::script::{check, Goal};

/// An open buffer of a project script that defines goals (not a `lib/` file).
struct Buffer {
    uri: Uri,
    text: String,
    /// Its name as goals show it: the project-relative path (`deploy/site.rhai`).
    shown: String,
}

/// The buffers among `documents` (uri and text) that are goal scripts of the project whose
/// scripts live in `scripts` (`<project>/deploy`).
fn goal_buffers<'a>(
    documents: impl Iterator<Item = (&'a String, &'a String)>,
    scripts: &Path,
) -> Vec<Buffer> {
    let Some(project) = scripts.parent() else {
        return Vec::new();
    };
    documents
        .filter_map(|(uri, text)| {
            let uri: Uri = uri.parse().ok()?;
            let path = text::path_of(&uri)?;
            let rel = path.strip_prefix(scripts).ok()?;
            if path.extension()? != "rhai" || rel.starts_with("lib") {
                return None;
            }
            let shown = path.strip_prefix(project).ok()?.display().to_string();
            Some(Buffer {
                uri,
                text: text.clone(),
                shown,
            })
        })
        .collect()
}

impl Server {
    /// Every goal, sorted by name: the open buffers' goals replace those of their files on
    /// disk, and hide a less specific layer's goal of the same name.
    pub(super) fn goals(&mut self) -> Vec<Goal> {
        self.goals_and_buffers().0
    }

    /// The goal called `name`, as [`Server::goals`] has it.
    pub(super) fn goal(&mut self, name: &str) -> Option<Goal> {
        self.goals().into_iter().find(|g| g.name == name)
    }

    /// Where goal `name` is defined: its line in an open buffer, else in its file (stdlib and
    /// generated files as read-only copies in the cache).
    pub(super) fn goal_location(&mut self, name: &str) -> Option<Location> {
        let (goals, buffers) = self.goals_and_buffers();
        let goal = goals.into_iter().find(|g| g.name == name)?;
        if let Some(buffer) = buffers.into_iter().find(|b| b.shown == goal.file) {
            let line = check::fn_line(&buffer.text, name).unwrap_or(1);
            let range = text::line_range(&buffer.text, line);
            return Some(Location::new(buffer.uri, range));
        }
        let cache = self.cache.clone();
        let (path, line) = self.workspace().goal_location(name, &cache)?;
        let target = std::fs::read_to_string(&path).unwrap_or_default();
        Some(Location::new(
            text::uri_of(&path)?,
            text::line_range(&target, line),
        ))
    }

    /// The merged goals, and the open goal scripts of the project.
    fn goals_and_buffers(&mut self) -> (Vec<Goal>, Vec<Buffer>) {
        let scripts = self.workspace().scripts_dir();
        let mut goals: Vec<Goal> = self.workspace().goals().into_iter().cloned().collect();
        let Some(scripts) = scripts else {
            return (goals, Vec::new());
        };
        let buffers = goal_buffers(self.documents.iter(), &scripts);
        for buffer in &buffers {
            goals.retain(|g| g.file != buffer.shown);
            for goal in check::outline(&buffer.text).into_iter().filter_map(|f| {
                let f = FnOutline {
                    name: f.name,
                    params: f.params,
                    doc: f.doc,
                    private: f.private,
                };
                Goal::unsaved(&f, buffer.shown.clone())
            }) {
                goals.retain(|g| g.name != goal.name);
                goals.push(goal);
            }
        }
        goals.sort_by(|a, b| a.name.cmp(&b.name));
        (goals, buffers)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SAVED: &str = "/// Set up the web server.\nfn web_setup(host) {\n    host.packages([\"nginx\"]);\n}\n\n/// Gone once edited.\nfn web_old() {}\n";

    /// A server over a project whose `deploy/site.rhai` holds `SAVED` on disk.
    fn server(dir: &Path) -> Server {
        std::fs::write(dir.join("weft.toml"), "[project]\nname = \"site\"\n").expect("weft.toml");
        std::fs::create_dir_all(dir.join("deploy/lib")).expect("deploy/lib");
        std::fs::write(dir.join("deploy/site.rhai"), SAVED).expect("site.rhai");
        Server {
            root: dir.to_path_buf(),
            documents: HashMap::new(),
            functions: Vec::new(),
            workspace: None,
            cache: dir.join("cache"),
            env: None,
        }
    }

    fn open(server: &mut Server, dir: &Path, rel: &str, text: &str) -> Uri {
        let uri = text::uri_of(&dir.join(rel)).expect("uri");
        server
            .documents
            .insert(uri.as_str().to_string(), text.to_string());
        uri
    }

    /// What an editor shows of goals comes from the unsaved text of an open script: a goal
    /// added before saving completes, hovers with its doc and is found at its line; one deleted
    /// before saving is gone; the file on disk is what it was.
    #[test]
    fn goals_come_from_the_open_buffers_unsaved_text() {
        let dir = tempfile::tempdir().expect("dir");
        let mut server = server(dir.path());
        let names = |s: &mut Server| s.goals().into_iter().map(|g| g.name).collect::<Vec<_>>();
        assert!(names(&mut server).contains(&"web_old".to_string()));
        assert!(!names(&mut server).contains(&"web_restart".to_string()));

        let edited = "/// Set up nginx and the site.\nfn web_setup(host) {}\n\n\n/// Restart the web server.\nfn web_restart(host) {}\nprivate fn helper() {}\n";
        let uri = open(&mut server, dir.path(), "deploy/site.rhai", edited);
        let found = names(&mut server);
        assert!(found.contains(&"web_restart".to_string()), "{found:?}");
        assert!(!found.contains(&"web_old".to_string()), "{found:?}");
        assert!(!found.contains(&"helper".to_string()), "{found:?}");
        let goal = server.goal("web_setup").expect("web_setup");
        assert_eq!(goal.doc, "Set up nginx and the site.");
        assert_eq!(goal.file, "deploy/site.rhai");
        let restart = server.goal("web_restart").expect("web_restart");
        assert!(restart.takes_host && restart.params.is_empty());
        let at = server.goal_location("web_restart").expect("location");
        assert_eq!(at.uri, uri);
        assert_eq!(at.range.start.line, 5);
        // The stdlib's goals are still there, found in their files.
        assert!(server.goal_location("nginx_reload").is_some());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("deploy/site.rhai")).expect("read"),
            SAVED
        );
    }

    /// Only the project's goal scripts count: an open `lib/` helper or a file outside
    /// `deploy/` defines no goal.
    #[test]
    fn helpers_and_files_outside_the_scripts_define_no_goals() {
        let dir = tempfile::tempdir().expect("dir");
        let mut server = server(dir.path());
        open(
            &mut server,
            dir.path(),
            "deploy/lib/util.rhai",
            "fn lib_only() {}\n",
        );
        open(&mut server, dir.path(), "notes.rhai", "fn elsewhere() {}\n");
        let names: Vec<String> = server.goals().into_iter().map(|g| g.name).collect();
        assert!(names.contains(&"web_setup".to_string()));
        assert!(
            !names.iter().any(|n| n == "lib_only" || n == "elsewhere"),
            "{names:?}"
        );
    }
}
