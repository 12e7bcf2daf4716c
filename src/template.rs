//! Handlebars templates looked up through the layers (project → user → stdlib).

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use handlebars::template::TemplateElement;
use handlebars::{Handlebars, Template};
use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use crate::index::{self, Index};
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

/// Every winning template of a project. All of them are checked before a goal runs (from the
/// index of texts known to parse, where one is kept); each is compiled when it is first
/// rendered, with the partials it names.
#[derive(Debug)]
pub struct Templates {
    layers: Layers,
    checked: OnceLock<Result<Checked, String>>,
    registry: RwLock<Handlebars<'static>>,
}

/// Every winning template's text, and the first that does not parse.
#[derive(Debug)]
struct Checked {
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
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        // Config files are not HTML: keep `&`, `<` and quotes as written.
        registry.register_escape_fn(handlebars::no_escape);
        Templates {
            layers,
            checked: OnceLock::new(),
            registry: RwLock::new(registry),
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

    /// The name `name` stands for, which may omit a final `.hbs`.
    fn lookup(&self, checked: &Checked, name: &str) -> Result<String, TemplateError> {
        let name = name.trim_start_matches('/');
        let name = name.strip_prefix("templates/").unwrap_or(name);
        for candidate in [name.to_string(), format!("{name}.hbs")] {
            if checked.sources.contains_key(&candidate) {
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

    /// Reads every winning template and parses those `index` does not know to parse (all of
    /// them without one), once per command.
    fn read_all(&self, mut index: Option<&mut Index>) -> Result<&Checked, TemplateError> {
        let checked = self.checked.get_or_init(|| {
            if let Some(index) = index.as_deref_mut() {
                index.checking_templates();
            }
            let mut sources = HashMap::new();
            let mut error = None;
            let mut registry = self.write();
            for resolved in self.layers.resolve_all(Kind::Template) {
                let file = resolved.winner;
                let Some(name) = file.logical.strip_prefix(&format!("{TEMPLATES}/")) else {
                    continue;
                };
                let source = file
                    .read()
                    .map_err(|e| format!("cannot read {}: {e}", file.display_name()))?;
                // As for scripts: a stdlib file is named by its path, the binary holds its text.
                let key = index.is_some().then(|| {
                    if file.is_embedded() {
                        format!("<stdlib>/{}", file.logical)
                    } else {
                        index::key(source.text())
                    }
                });
                let known = match (index.as_deref_mut(), &key) {
                    (Some(index), Some(key)) => index.template_parses(key),
                    _ => false,
                };
                if !known {
                    match Template::compile_with_name(source.text(), name.to_string()) {
                        Ok(template) => {
                            // Parsed now: kept for a render, so it is not parsed twice.
                            registry.register_template(name, template);
                            if let (Some(index), Some(key)) = (index.as_deref_mut(), key) {
                                index.remember_template(key);
                            }
                        }
                        Err(err) => {
                            error.get_or_insert(Broken {
                                name: name.to_string(),
                                message: err.reason().to_string(),
                                pos: err.pos(),
                            });
                        }
                    }
                }
                sources.insert(name.to_string(), source);
            }
            Ok(Checked { sources, error })
        });
        checked.as_ref().map_err(|message| TemplateError::Read {
            name: TEMPLATES.into(),
            message: message.clone(),
        })
    }

    /// Whether the source of template `name` contains `word` (e.g. whether it uses facts).
    pub fn mentions(&self, name: &str, word: &str) -> bool {
        let Ok(checked) = self.read_all(None) else {
            return false;
        };
        let Ok(name) = self.lookup(checked, name) else {
            return false;
        };
        checked
            .sources
            .get(&name)
            .is_some_and(|s| s.text().contains(word))
    }

    /// Fails when a template cannot be read or does not parse, naming the first such.
    pub fn check(&self) -> Result<(), TemplateError> {
        self.whole(None).map(|_| ())
    }

    /// Like `check`, parsing only the texts `index` does not know to parse, and keeping in it
    /// those that parse now.
    pub fn check_with(&self, index: &mut Index) -> Result<(), TemplateError> {
        self.whole(Some(index)).map(|_| ())
    }

    fn whole(&self, index: Option<&mut Index>) -> Result<&Checked, TemplateError> {
        let checked = self.read_all(index)?;
        match &checked.error {
            Some(broken) => Err(invalid(checked, &broken.name, &broken.message, broken.pos)),
            None => Ok(checked),
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Handlebars<'static>> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Compiles template `name` unless it is, and the templates it names as partials: all of
    /// them when a partial's name is computed as it renders.
    fn compile(&self, checked: &Checked, name: &str) -> Result<(), TemplateError> {
        if self.read().has_template(name) {
            return Ok(());
        }
        let mut registry = self.write();
        let mut wanted = vec![name.to_string()];
        while let Some(name) = wanted.pop() {
            let Some(source) = checked.sources.get(&name) else {
                continue;
            };
            if registry.has_template(&name) {
                continue;
            }
            let template =
                Template::compile_with_name(source.text(), name.clone()).map_err(|err| {
                    invalid(checked, &name, err.reason().to_string().as_str(), err.pos())
                })?;
            let mut partials = Partials::default();
            partials.of(&template);
            registry.register_template(&name, template);
            if partials.computed {
                wanted.extend(checked.sources.keys().cloned());
            } else {
                wanted.extend(partials.named);
            }
        }
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, Handlebars<'static>> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Renders template `name` with `vars`.
    pub fn render(&self, name: &str, vars: &Vars) -> Result<String, TemplateError> {
        let checked = self.whole(None)?;
        let name = self.lookup(checked, name)?;
        self.compile(checked, &name)?;
        self.read().render(&name, vars).map_err(|err| {
            let broken = err.template_name.clone().unwrap_or(name);
            let pos = err.line_no.zip(err.column_no);
            let message = match err.reason() {
                handlebars::RenderErrorReason::MissingVariable(Some(var)) => {
                    format!("variable `{var}` is not set")
                }
                other => other.to_string(),
            };
            invalid(checked, &broken, &message, pos)
        })
    }
}

/// The templates a template includes as partials (`{{> name}}`).
#[derive(Default)]
struct Partials {
    named: Vec<String>,
    /// Whether a partial's name is computed as it renders (`{{> (lookup ...)}}`).
    computed: bool,
}

impl Partials {
    fn of(&mut self, template: &Template) {
        for element in &template.elements {
            match element {
                TemplateElement::HtmlExpression(helper)
                | TemplateElement::Expression(helper)
                | TemplateElement::HelperBlock(helper) => {
                    for inner in [&helper.template, &helper.inverse].into_iter().flatten() {
                        self.of(inner);
                    }
                }
                TemplateElement::DecoratorExpression(decorator)
                | TemplateElement::DecoratorBlock(decorator) => {
                    if let Some(inner) = &decorator.template {
                        self.of(inner);
                    }
                }
                TemplateElement::PartialExpression(partial)
                | TemplateElement::PartialBlock(partial) => {
                    match partial.name.as_name() {
                        Some(name) => self.named.push(name.to_string()),
                        None => self.computed = true,
                    }
                    if let Some(inner) = &partial.template {
                        self.of(inner);
                    }
                }
                _ => {}
            }
        }
    }
}

fn invalid(
    checked: &Checked,
    name: &str,
    message: &str,
    pos: Option<(usize, usize)>,
) -> TemplateError {
    let source = checked.sources.get(name);
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
