//! Waiting on a host (`host.wait_until`): a command or a check tried again until it succeeds or
//! the deadline passes, with pauses that Ctrl-C and the host's deadline end at once.

use std::time::{Duration, Instant};

use crate::exec::session::{HostError, HostSession, RunOptions};

use super::fail;

/// How long and how often `wait_until` tries.
#[derive(Debug, Clone)]
pub struct WaitSpec {
    /// How long to try for.
    pub timeout: Duration,
    /// The pause between two tries.
    pub interval: Duration,
    /// Return `false` when the deadline passes, instead of failing.
    pub allow_fail: bool,
    /// The command only reads: try it under `--check` too.
    pub check_safe: bool,
}

impl Default for WaitSpec {
    fn default() -> Self {
        WaitSpec {
            timeout: Duration::from_secs(30),
            interval: Duration::from_secs(1),
            allow_fail: false,
            check_safe: false,
        }
    }
}

/// `90 s`, `3m 5s`, `1h 2m`: a duration as messages give it.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs < 60 {
        let tenths = duration.as_millis() / 100;
        if tenths.is_multiple_of(10) || secs >= 10 {
            return format!("{secs}s");
        }
        return format!("{}.{}s", tenths / 10, tenths % 10);
    }
    if secs < 3600 {
        return format!("{}m {}s", secs / 60, secs % 60);
    }
    if secs < 86_400 {
        return format!("{}h {}m", secs / 3600, secs % 3600 / 60);
    }
    format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600)
}

/// Sleeps for `pause` on the controller, ended early by Ctrl-C (an error naming `step`).
pub fn pause(session: &HostSession, pause: Duration, step: &str) -> Result<(), HostError> {
    session.not_interrupted(step)?;
    let cancel = session.cancel(false);
    session.block_on(async {
        tokio::select! {
            biased;
            () = cancel.wait() => Err(HostError::Interrupted(format!("while waiting for `{step}`"))),
            () = tokio::time::sleep(pause) => Ok(()),
        }
    })
}

/// Tries `attempt` until it returns `true`, pausing `spec.interval` between tries, for at most
/// `spec.timeout`; `what` names it in the error. `true` once it held; `false` when the deadline
/// passed with `allow_fail`. Under `--check` (without `check_safe`) it tries nothing, says what
/// it would wait for and returns `true`, as a skipped command is taken to succeed. Errors of
/// `attempt` end the wait; `lift` turns the wait's own into the attempt's error type.
pub fn wait_until<E>(
    session: &HostSession,
    what: &str,
    spec: &WaitSpec,
    mut attempt: impl FnMut(Duration) -> Result<bool, E>,
    lift: impl Fn(HostError) -> E,
) -> Result<bool, E> {
    if session.is_check() && !spec.check_safe {
        session.log(&format!(
            "would wait until {what} (at most {})",
            human(spec.timeout)
        ));
        return Ok(true);
    }
    let started = Instant::now();
    let mut tries = 0;
    loop {
        session.not_interrupted(what).map_err(&lift)?;
        tries += 1;
        let left = spec.timeout.saturating_sub(started.elapsed());
        if attempt(left.max(Duration::from_secs(1)))? {
            if tries > 1 {
                session.log(&format!("waited {} until {what}", human(started.elapsed())));
            }
            return Ok(true);
        }
        let waited = started.elapsed();
        if waited >= spec.timeout {
            if spec.allow_fail {
                return Ok(false);
            }
            return Err(lift(fail(
                "wait_until",
                format!(
                    "{what}: still not so after {} ({tries} tries)",
                    human(spec.timeout)
                ),
            )));
        }
        pause(session, spec.interval.min(spec.timeout - waited), what).map_err(&lift)?;
    }
}

/// `wait_until` of a shell command: each try runs it quietly (its time bounded by what is left
/// of the wait, at least a second), and it holds when the command exits 0.
pub fn command(session: &HostSession, command: &str, spec: &WaitSpec) -> Result<bool, HostError> {
    let what = format!("`{command}` succeeds");
    wait_until(
        session,
        &what,
        spec,
        |left| {
            let options = RunOptions {
                check_safe: true,
                quiet: true,
                fail_on_error: false,
                timeout: Some(left),
                ..RunOptions::default()
            };
            match session.run(command, &options) {
                Ok(out) => Ok(out.is_some_and(|o| o.code == 0)),
                // A try that outlives the wait is a failed try; the loop then ends the wait.
                Err(HostError::Transport(crate::transport::TransportError::Timeout { .. })) => {
                    Ok(false)
                }
                Err(err) => Err(err),
            }
        },
        |err| err,
    )
}
