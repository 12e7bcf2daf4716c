//! Handlebars templates looked up through the layers (project → user → stdlib).

use std::collections::HashMap;
use std::sync::OnceLock;

use handlebars::Handlebars;
use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use crate::inventory::Vars;
use crate::layers::{Kind, Layers, TEMPLATES};
use crate::source::SourceFile;

/// A template that is missing, does not parse or does not render.
#[derive(Debug, Error, Diagnostic)]
pub enum TemplateError {
    /// No layer has the template.
    #[error("no template `{name}`")]
    #[diagnostic(code(weft::template::not_found))]
    NotFound {
        name: String,
        #[help]
        help: Option<String>,
    },
    /// A template file could not be read.
    #[error("cannot read template `{name}`: {message}")]
    #[diagnostic(code(weft::template::read))]
    Read { name: String, message: String },
    /// The template is not valid handlebars, or rendering it failed.
    #[error("template `{name}`: {message}")]
    #[diagnostic(code(weft::template::render))]
    Invalid {
        name: String,
        message: String,
        #[label("{message}")]
        span: Option<SourceSpan>,
        #[source_code]
        src: Option<NamedSource<String>>,
    },
}

/// Every winning template of a project, compiled on first use.
#[derive(Debug)]
pub struct Templates {
    layers: Layers,
    compiled: OnceLock<Result<Compiled, String>>,
}

#[derive(Debug)]
struct Compiled {
    registry: Handlebars<'static>,
    sources: HashMap<String, SourceFile>,
    error: Option<Broken>,
}

/// The first template that failed to parse: its name, the reason and the position.
#[derive(Debug)]
struct Broken {
    name: String,
    message: String,
    pos: Option<(usize, usize)>,
}

impl Templates {
    /// The templates of `layers`.
    pub fn new(layers: Layers) -> Self {
        Templates {
            layers,
            compiled: OnceLock::new(),
        }
    }

    /// The names templates are rendered by: their paths under `templates/`.
    pub fn names(&self) -> Vec<String> {
        self.layers
            .resolve_all(Kind::Template)
            .into_iter()
            .filter_map(|r| Some(r.winner.logical.strip_prefix("templates/")?.to_string()))
            .collect()
    }

    /// The registered name for `name`, which may omit a final `.hbs`.
    fn lookup(&self, compiled: &Compiled, name: &str) -> Result<String, TemplateError> {
        let name = name.trim_start_matches('/');
        let name = name.strip_prefix("templates/").unwrap_or(name);
        for candidate in [name.to_string(), format!("{name}.hbs")] {
            if compiled.registry.has_template(&candidate) {
                return Ok(candidate);
            }
        }
        let names = self.names();
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        Err(TemplateError::NotFound {
            name: name.to_string(),
            help: crate::suggest::help("templates", name, &known),
        })
    }

    fn compile(&self) -> Result<&Compiled, TemplateError> {
        let compiled = self.compiled.get_or_init(|| {
            let mut registry = Handlebars::new();
            registry.set_strict_mode(true);
            // Config files are not HTML: keep `&`, `<` and quotes as written.
            registry.register_escape_fn(handlebars::no_escape);
            let mut sources = HashMap::new();
            let mut error = None;
            for resolved in self.layers.resolve_all(Kind::Template) {
                let file = resolved.winner;
                let Some(name) = file.logical.strip_prefix(&format!("{TEMPLATES}/")) else {
                    continue;
                };
                let source = file
                    .read()
                    .map_err(|e| format!("cannot read {}: {e}", file.display_name()))?;
                if let Err(err) = registry.register_template_string(name, source.text()) {
                    error.get_or_insert(Broken {
                        name: name.to_string(),
                        message: err.reason().to_string(),
                        pos: err.pos(),
                    });
                }
                sources.insert(name.to_string(), source);
            }
            Ok(Compiled {
                registry,
                sources,
                error,
            })
        });
        compiled.as_ref().map_err(|message| TemplateError::Read {
            name: TEMPLATES.into(),
            message: message.clone(),
        })
    }

    /// Whether the source of template `name` contains `word` (e.g. whether it uses facts).
    pub fn mentions(&self, name: &str, word: &str) -> bool {
        let Ok(compiled) = self.compile() else {
            return false;
        };
        let Ok(name) = self.lookup(compiled, name) else {
            return false;
        };
        compiled
            .sources
            .get(&name)
            .is_some_and(|s| s.text().contains(word))
    }

    /// Fails when a template cannot be read or does not parse, naming the first such.
    pub fn check(&self) -> Result<(), TemplateError> {
        self.whole().map(|_| ())
    }

    fn whole(&self) -> Result<&Compiled, TemplateError> {
        let compiled = self.compile()?;
        match &compiled.error {
            Some(broken) => Err(invalid(compiled, &broken.name, &broken.message, broken.pos)),
            None => Ok(compiled),
        }
    }

    /// Renders template `name` with `vars`.
    pub fn render(&self, name: &str, vars: &Vars) -> Result<String, TemplateError> {
        let compiled = self.whole()?;
        let name = self.lookup(compiled, name)?;
        compiled.registry.render(&name, vars).map_err(|err| {
            let broken = err.template_name.clone().unwrap_or(name);
            let pos = err.line_no.zip(err.column_no);
            let message = match err.reason() {
                handlebars::RenderErrorReason::MissingVariable(Some(var)) => {
                    format!("variable `{var}` is not set")
                }
                other => other.to_string(),
            };
            invalid(compiled, &broken, &message, pos)
        })
    }
}

fn invalid(
    compiled: &Compiled,
    name: &str,
    message: &str,
    pos: Option<(usize, usize)>,
) -> TemplateError {
    let source = compiled.sources.get(name);
    let span = pos
        .zip(source)
        .map(|((line, column), source)| SourceSpan::from((source.offset(line, column.max(1)), 1)));
    let location = match pos {
        Some((line, column)) => format!(":{line}:{column}"),
        None => String::new(),
    };
    TemplateError::Invalid {
        name: source.map_or_else(|| name.to_string(), |s| s.name().to_string()) + location.as_str(),
        message: message.to_string(),
        span,
        src: source.map(SourceFile::named),
    }
}
