//! weft's diagnostic log: `-v`/`-vv` or `RUST_LOG` turn on weft's, russh's and the AWS SDK's
//! logs (through `tracing`, russh's `log` records bridged) on standard error. Every line
//! passes through a mask of the secrets the run knows, so passwords never reach the log.
//! Lines for people on stderr (`note`, prompts through `aside`, the log) step around the
//! progress bar while one is drawn, so no line ever shares the terminal's line with a frame.

use std::io::Write;
use std::sync::Mutex;

use indicatif::ProgressBar;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::mask::Mask;

/// The secrets of this process: the log is one per process, so its mask is too.
static SECRETS: Mask = Mask::new();

/// Hides `secret` in every log line from now on.
pub fn hide(secret: &str) {
    SECRETS.add(secret);
}

/// The progress bar drawn on the terminal now, if any (one per process: one run draws it).
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Makes `bar` the one that lines on stderr step around (`None` once it is cleared).
pub fn set_bar(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Runs `write` with the progress bar cleared from the terminal, and draws it again after;
/// the bar does not redraw meanwhile, so a prompt written here stays visible until answered.
pub fn aside<T>(write: impl FnOnce() -> T) -> T {
    // Cloned out, so the registry is not held while `write` runs (it may take a while).
    let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(bar) if !bar.is_finished() => bar.suspend(write),
        _ => write(),
    }
}

/// Writes `message` to stderr for people, as whole lines of their own: the way every weft
/// message outside a run's output (image builds, Ctrl-C notices) reaches the terminal.
pub fn note(message: &str) {
    let text = SECRETS.apply(message);
    aside(|| {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    });
}

/// Standard error behind the mask; each log event arrives in one write.
struct MaskedStderr;

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = SECRETS.apply(&String::from_utf8_lossy(buf));
        aside(|| std::io::stderr().lock().write_all(text.as_bytes()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

struct Masked;

impl<'a> MakeWriter<'a> for Masked {
    type Writer = MaskedStderr;
    fn make_writer(&'a self) -> MaskedStderr {
        MaskedStderr
    }
}

/// What `-v` (1) and `-vv` (2 or more) show when `RUST_LOG` is not set.
fn directives(verbose: u8) -> &'static str {
    match verbose {
        1 => "weft=debug,russh=info,aws_config=info,aws_sdk_ec2=info",
        _ => {
            "weft=trace,russh=debug,russh_sftp=debug,aws_config=debug,aws_sdk_ec2=debug,\
             aws_smithy_runtime=debug,aws_smithy_runtime_api=debug"
        }
    }
}

/// Starts the log: `RUST_LOG` when set, else by `verbose`; nothing at all when neither asks.
pub fn init(verbose: u8) {
    // The SDK does not log credentials, but a debug line quoting its environment must not
    // leak them either.
    for name in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Ok(value) = std::env::var(name) {
            hide(&value);
        }
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ if verbose > 0 => EnvFilter::new(directives(verbose)),
        _ => return,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Masked)
        .with_ansi(false)
        .with_target(true)
        .try_init();
}
