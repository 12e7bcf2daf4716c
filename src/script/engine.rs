//! Builds the Rhai engines that run goals: limits, the API package and layered imports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rhai::packages::{Package, StandardPackage};
use rhai::{
    exported_module, CallFnOptions, Dynamic, Engine, EvalAltResult, Module, ModuleResolver,
    Position, Scope, Shared,
};

use super::api::chores::chores_api;
use super::api::cloud::cloud_api;
use super::api::error::{error_api, OpError};
use super::api::global::{global_api, ScriptContext};
use super::api::host::{host_api, Host};
use super::api::ops::ops_api;
use super::api::waits::waits_api;
use super::diagnostic::{self, GoalSite, ScriptError};
use super::limits::{MAX_COLLECTION_ITEMS, MAX_STRING_BYTES};
use super::set::{Goal, ScriptSet};
use crate::config::{AppSettings, Setting};
use crate::index::{DeclaredOutline, Index, SettingOutline};
use crate::layers::Layers;
use crate::template::{TemplateError, Templates};

/// The default budget of Rhai operations for one goal call.
pub const DEFAULT_MAX_OPERATIONS: u64 = 50_000_000;

/// Rhai's standard package and weft's API, made when the first engine is (`weft list` needs
/// neither), once per process: they are the same for every project, and never freed.
static MODULES: OnceLock<(Shared<Module>, Shared<Module>)> = OnceLock::new();

/// Compiled scripts plus everything needed to make engines that run them.
pub struct ScriptEngine {
    scripts: Arc<ScriptSet>,
    resolver: Arc<ModuleCache>,
    max_operations: u64,
    /// The outlines kept on disk, with what `declared_app_settings` found.
    index: Mutex<Index>,
}

/// Resolves `import` through the compiled layers, evaluating each module once per run.
struct ModuleCache {
    scripts: Arc<ScriptSet>,
    modules: Mutex<HashMap<String, Shared<Module>>>,
}

#[derive(Clone)]
struct LayeredResolver(Arc<ModuleCache>);

impl ModuleResolver for LayeredResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let cache = &self.0;
        if let Some(module) = cache.lock().get(path) {
            return Ok(module.clone());
        }
        let script = cache
            .scripts
            .import(path)
            .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))?;
        let ast = cache.scripts.compiled(script).map_err(|err| {
            Box::new(EvalAltResult::ErrorInModule(
                path.to_string(),
                err.into(),
                pos,
            ))
        })?;
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|err| Box::new(EvalAltResult::ErrorInModule(path.to_string(), err, pos)))?;
        let module: Shared<Module> = module.into();
        cache.lock().insert(path.to_string(), module.clone());
        Ok(module)
    }
}

impl ModuleCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Shared<Module>>> {
        self.modules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The engine used only to compile: syntax needs no functions.
pub(crate) fn compiler() -> Engine {
    let mut engine = Engine::new_raw();
    engine.set_max_expr_depths(128, 64);
    engine
}

impl ScriptEngine {
    /// Outlines every script of `layers`, compiling those the index in weft's cache folder
    /// does not know (and keeping their outlines there).
    pub fn load(layers: &Layers, max_operations: Option<u64>) -> Result<Self, ScriptError> {
        let engine = Self::load_with(layers, max_operations, Index::open(layers.root()))?;
        engine.save_index();
        Ok(engine)
    }

    /// Writes back what the index learnt, when it learnt anything.
    fn save_index(&self) {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).save();
    }

    /// Checks that every template parses, parsing only the texts the index does not know
    /// to, and keeps those that parse now in it.
    pub fn check_templates(&self, templates: &Templates) -> Result<(), TemplateError> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let checked = templates.check_with(&mut index);
        index.save();
        checked
    }

    /// Like `load`, with the outlines `index` keeps, which it does not write back.
    pub fn load_with(
        layers: &Layers,
        max_operations: Option<u64>,
        mut index: Index,
    ) -> Result<Self, ScriptError> {
        let scripts = Arc::new(ScriptSet::load(layers, compiler(), &mut index)?);
        // Mark what the app service declares as used, so that saving does not drop it.
        if let Some(app) = scripts.import("lib/app") {
            let _ = index.app_settings(app.key());
        }
        Ok(ScriptEngine {
            resolver: Arc::new(ModuleCache {
                scripts: scripts.clone(),
                modules: Mutex::new(HashMap::new()),
            }),
            scripts,
            max_operations: max_operations.unwrap_or(DEFAULT_MAX_OPERATIONS),
            index: Mutex::new(index),
        })
    }

    /// The compiled scripts and their goals.
    pub fn scripts(&self) -> &ScriptSet {
        &self.scripts
    }

    /// Every function weft registers for scripts, in one module.
    pub fn api_module() -> Shared<Module> {
        let mut module = exported_module!(host_api);
        module.combine_flatten(exported_module!(ops_api));
        super::api::ops::register_short_forms(&mut module);
        super::api::host::register_short_forms(&mut module);
        super::api::waits::register_short_forms(&mut module);
        super::api::chores::register_short_forms(&mut module);
        module.combine_flatten(exported_module!(waits_api));
        module.combine_flatten(exported_module!(chores_api));
        module.combine_flatten(exported_module!(global_api));
        module.combine_flatten(exported_module!(cloud_api));
        module.combine_flatten(exported_module!(error_api));
        module.into()
    }

    /// Rhai's standard package and weft's API, made on first use.
    pub(crate) fn modules() -> &'static (Shared<Module>, Shared<Module>) {
        MODULES.get_or_init(|| {
            (
                StandardPackage::new().as_shared_module(),
                Self::api_module(),
            )
        })
    }

    /// An engine that knows the API, imports through the layers and reports to `context`.
    pub fn engine(&self, context: Option<ScriptContext>) -> Engine {
        let (std, api) = Self::modules();
        let mut engine = Engine::new_raw();
        engine.register_global_module(std.clone());
        engine.register_global_module(api.clone());
        engine.register_type_with_name::<Host>("Host");
        engine.register_type_with_name::<OpError>("OpError");
        engine.set_module_resolver(LayeredResolver(self.resolver.clone()));
        engine.set_max_operations(self.max_operations);
        // A runaway script fails with a clear error instead of exhausting the controller.
        engine.set_max_string_size(MAX_STRING_BYTES);
        engine.set_max_array_size(MAX_COLLECTION_ITEMS);
        engine.set_max_map_size(MAX_COLLECTION_ITEMS);
        engine.set_max_call_levels(64);
        engine.set_max_expr_depths(128, 64);
        // What Rhai's limits miss: nesting depth, and the memory of all the goal's values.
        super::limits::install(&mut engine);
        if let Some(context) = context {
            let (print, debug) = (context.clone(), context.clone());
            engine.on_print(move |text| print.output.log(&print.prefix, text));
            engine.on_debug(move |text, _, _| debug.output.log(&debug.prefix, text));
            engine.set_default_tag(Dynamic::from(context));
        }
        engine
    }

    /// Checks that `args` fit `goal`'s parameters.
    pub fn check_arguments(goal: &Goal, args: &[String]) -> Result<(), ScriptError> {
        if args.len() == goal.params.len() {
            return Ok(());
        }
        let expected = match goal.params.len() {
            0 => "no arguments".to_string(),
            1 => format!("1 argument ({})", goal.params[0]),
            n => format!("{n} arguments ({})", goal.params.join(", ")),
        };
        Err(ScriptError::Arguments {
            goal: goal.name.clone(),
            expected,
            given: args.len(),
            usage: goal.usage(),
        })
    }

    /// Calls `goal` with `host` (for host goals) and the command-line `args`.
    pub fn call(
        &self,
        engine: &Engine,
        goal: &Goal,
        host: Option<Host>,
        args: &[String],
    ) -> Result<Dynamic, ScriptError> {
        let args = args.iter().map(|a| Dynamic::from(a.clone())).collect();
        self.call_with(engine, goal, host, args)
    }

    /// Like `call`, with arguments already made values (a map for `decide`).
    pub fn call_with(
        &self,
        engine: &Engine,
        goal: &Goal,
        host: Option<Host>,
        args: Vec<Dynamic>,
    ) -> Result<Dynamic, ScriptError> {
        let script = self.scripts.script_of(goal);
        let ast = self.scripts.ast(script)?;
        // For a runtime error on a missing var: the host and the names it has.
        let vars_of = host.as_ref().map(|h| {
            let spec = &h.0.spec;
            (
                spec.name.clone(),
                spec.vars.keys().cloned().collect::<Vec<_>>(),
            )
        });
        let mut call_args: Vec<Dynamic> = Vec::with_capacity(args.len() + 1);
        if let Some(host) = host {
            call_args.push(Dynamic::from(host));
        }
        call_args.extend(args);
        let call = || {
            super::limits::guard(|| {
                let mut scope = Scope::new();
                let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
                let value = engine.call_fn_with_options::<Dynamic>(
                    options, &mut scope, &ast, &goal.name, call_args,
                )?;
                // A value too deep to copy or drop on another thread's stack ends here.
                super::limits::check_result(&value)?;
                Ok(value)
            })
        };
        // On a stack deep enough for what Rhai does recursively with values the limits allow.
        crate::goal_stack::on_goal_stack(call)
            .map_err(|err| ScriptError::Runtime {
                message: format!("cannot start a thread for goal `{}`: {err}", goal.name),
                span: None,
                label: String::new(),
                src: None,
                help: None,
            })?
            .map_err(|err| {
                let site = GoalSite {
                    goal: &goal.name,
                    source: &script.source,
                };
                let err = diagnostic::runtime(&err, &site, self.scripts.sources(), |path| {
                    self.scripts
                        .import(path)
                        .map(|s| s.source.name().to_string())
                });
                match &vars_of {
                    Some((host, vars)) => {
                        let names: Vec<&str> = vars.iter().map(String::as_str).collect();
                        diagnostic::missing_vars(err, host, &names)
                    }
                    None => err,
                }
            })
    }
}

/// Loads the scripts of `layers` with the limits the project configures, and checks the
/// project's `[apps.NAME]` settings against those the app service declares.
pub fn load(
    layers: &Layers,
    project: &crate::project::Project,
) -> Result<ScriptEngine, ScriptError> {
    load_from(layers, project, Index::open(layers.root()))
}

/// Like `load`, but it writes nothing in weft's cache folder (`--check` changes nothing on
/// the controller either).
pub fn load_read_only(
    layers: &Layers,
    project: &crate::project::Project,
) -> Result<ScriptEngine, ScriptError> {
    load_from(layers, project, Index::read_only(layers.root()))
}

fn load_from(
    layers: &Layers,
    project: &crate::project::Project,
    index: Index,
) -> Result<ScriptEngine, ScriptError> {
    let max = project
        .config
        .as_ref()
        .and_then(|c| c.file.project.max_operations.as_ref())
        .map(|m| *m.get_ref());
    let engine = ScriptEngine::load_with(layers, max, index)?;
    let checked = check_apps(&engine, project);
    // Once, with what the app check learnt, even when it failed: a cold start pays for one
    // write, and fixing weft.toml then needs no compile.
    engine.save_index();
    checked.map(|()| engine)
}

/// Checks the project's `[apps.NAME]` settings against those the app service declares.
fn check_apps(engine: &ScriptEngine, project: &crate::project::Project) -> Result<(), ScriptError> {
    if let Some(config) = project.config.as_ref().filter(|c| !c.file.apps.is_empty()) {
        if let Some(declared) = engine.declared_app_settings()? {
            let app_keys: Vec<&str> = declared.app.iter().map(|s| s.name.as_str()).collect();
            let repo_keys: Vec<&str> = declared.repo.iter().map(|s| s.name.as_str()).collect();
            config.check_app_keys(&app_keys, &repo_keys)?;
        }
    }
    Ok(())
}

impl ScriptEngine {
    /// The settings `app_settings()` and `repo_settings()` of the winning `lib/app.rhai`
    /// declare (key, `doc` and default `value`), when it declares them (a project may replace
    /// the app service with one that does not).
    pub fn declared_app_settings(&self) -> Result<Option<AppSettings>, ScriptError> {
        let Some(script) = self.scripts.import("lib/app") else {
            return Ok(None);
        };
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(declared) = index.app_settings(script.key()) {
            return Ok(from_outline(declared));
        }
        let declared = self.evaluate_app_settings(script)?;
        index.remember_app_settings(script.key().to_string(), to_outline(declared.as_ref()));
        Ok(declared)
    }

    /// Calls `app_settings()` and `repo_settings()` of `script` when it declares both.
    fn evaluate_app_settings(
        &self,
        script: &super::set::Script,
    ) -> Result<Option<AppSettings>, ScriptError> {
        let declares = |name: &str| {
            script
                .functions
                .iter()
                .any(|f| f.name == name && f.params.is_empty())
        };
        if !declares("app_settings") || !declares("repo_settings") {
            return Ok(None);
        }
        let ast = self.scripts.ast(script)?;
        let engine = self.engine(None);
        let keys = |name: &str| -> Result<Vec<Setting>, ScriptError> {
            let map = engine
                .call_fn_with_options::<rhai::Map>(
                    // Only the function: the file's top level imports other scripts.
                    CallFnOptions::new().eval_ast(false),
                    &mut Scope::new(),
                    &ast,
                    name,
                    (),
                )
                .map_err(|err| {
                    let site = GoalSite {
                        goal: name,
                        source: &script.source,
                    };
                    diagnostic::runtime(&err, &site, self.scripts.sources(), |path| {
                        self.scripts
                            .import(path)
                            .map(|s| s.source.name().to_string())
                    })
                })?;
            Ok(map.iter().map(|(key, about)| setting(key, about)).collect())
        };
        Ok(Some(AppSettings {
            app: keys("app_settings")?,
            repo: keys("repo_settings")?,
        }))
    }
}

/// What the index keeps of `declared`.
fn to_outline(declared: Option<&AppSettings>) -> DeclaredOutline {
    let keep = |settings: &[Setting]| {
        settings
            .iter()
            .map(|s| SettingOutline {
                name: s.name.clone(),
                doc: s.doc.clone(),
                default: s.default.clone(),
            })
            .collect()
    };
    declared.map(|d| (keep(&d.app), keep(&d.repo)))
}

/// The settings the index kept.
fn from_outline(declared: DeclaredOutline) -> Option<AppSettings> {
    let settings = |kept: Vec<SettingOutline>| {
        kept.into_iter()
            .map(|s| Setting {
                name: s.name,
                doc: s.doc,
                default: s.default,
            })
            .collect()
    };
    declared.map(|(app, repo)| AppSettings {
        app: settings(app),
        repo: settings(repo),
    })
}

/// A setting from its entry in `app_settings()`: `#{ value: DEFAULT, doc: "..." }`, where a
/// `()` value means no default.
fn setting(key: &str, about: &Dynamic) -> Setting {
    let about = about.clone().try_cast::<rhai::Map>().unwrap_or_default();
    Setting {
        name: key.to_string(),
        doc: about
            .get("doc")
            .and_then(|d| d.clone().into_string().ok())
            .unwrap_or_default(),
        default: about
            .get("value")
            .filter(|v| !v.is_unit())
            .and_then(|v| rhai::serde::from_dynamic(v).ok()),
    }
}
