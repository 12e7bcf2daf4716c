//! A shell kept open on a host for the whole run, which runs weft's commands one after another.
//!
//! sshd pays for every exec channel: a fork, the session set-up, the login shell's start. On a
//! fleet that is most of a run's CPU, on both ends. The kept shell reads one command at a time
//! from its input, runs it in a subshell (so nothing a command sets or changes directory to
//! leaks into the next), and ends its output on each stream with a marker line holding a
//! random nonce, the exit status on standard output. Commands that need their own channel
//! (input, a stream) still get one.

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::error::SshError;
use super::stop::{Cut, Stop};
use crate::transport::capture::Capture;
use crate::transport::{ExecOutput, LineSink, Stream};

/// The loop the login shell runs: answer the greeting with `ready` on both streams (which
/// proves that it reads what weft sends, and ends what the login wrote before it), then read
/// lines up to the marker, run them, report the status.
/// POSIX only, since it runs in whatever shell the user logs in with. The driver's variables
/// are unset in the subshell before the command runs, so a command sees none of them. The
/// command runs in the background so that TERM (a timeout) reaches the trap at once, which
/// ends the command and every process under it (with `pgrep`; without it, the loop's whole
/// process group), then the loop. A daemon the command started has left the tree.
fn driver(marker: &str) -> String {
    format!(
        "__weft_m={marker}; \
         __weft_k() {{ for __weft_q in $(pgrep -P \"$1\"); do __weft_k \"$__weft_q\"; done; \
           kill -TERM \"$1\" 2>/dev/null; }}; \
         trap 'trap - TERM; if command -v pgrep >/dev/null; then __weft_k \"$__weft_p\"; \
           else kill -TERM 0; fi; exit 143' TERM; \
         IFS= read -r __weft_l && [ \"$__weft_l\" = \"exit 0 # $__weft_m\" ] || exit 0; \
         printf '%s ready %s\\n' \"$__weft_m\" \"$$\"; printf '%s ready\\n' \"$__weft_m\" >&2; \
         while :; do \
           __weft_c=; __weft_d=; \
           while IFS= read -r __weft_l; do \
             if [ \"$__weft_l\" = \"$__weft_m\" ]; then __weft_d=1; break; fi; \
             __weft_c=\"$__weft_c$__weft_l\n\"; \
           done; \
           [ -n \"$__weft_d\" ] || exit 0; \
           ( trap - TERM; \
             eval \"unset __weft_c __weft_d __weft_l __weft_m __weft_p __weft_q; \
               unset -f __weft_k; $__weft_c\" ) </dev/null & \
           __weft_p=$!; wait \"$__weft_p\"; \
           printf '\\n%s %s\\n' \"$__weft_m\" \"$?\"; \
           printf '\\n%s\\n' \"$__weft_m\" >&2; \
         done"
    )
}

/// One kept shell on one connection.
pub struct KeptShell {
    read: ChannelReadHalf,
    write: ChannelWriteHalf<Msg>,
    marker: String,
    /// The shell's process, which a timeout sends TERM.
    pid: u32,
}

/// Why a kept shell could not run a command.
pub enum ShellError {
    /// The shell never started (a restricted login, a forced command): use channels. The
    /// command did not run.
    Unavailable,
    /// The shell did not answer its greeting in time, and its channel was closed: the
    /// command sent with the greeting did not run, unless the shell answered just then.
    Stalled,
    /// The shell ended before the command reported its status.
    Lost,
    /// The command's deadline passed or the run was interrupted: the shell (process `pid`)
    /// must get TERM, which ends the command. Without a pid the shell had not answered yet,
    /// and its channel got TERM and was closed.
    Cut { pid: Option<u32>, cut: Cut },
    /// The connection failed.
    Ssh(SshError),
}

impl From<russh::Error> for ShellError {
    fn from(err: russh::Error) -> Self {
        ShellError::Ssh(err.into())
    }
}

/// What the shell sends first, before the command's output, until it has answered.
struct Greeting {
    /// `<marker> ready <pid>\n` on standard output.
    out: Vec<u8>,
    /// `<marker> ready\n` on standard error.
    err: Vec<u8>,
    pid: Option<u32>,
    err_done: bool,
    /// The shell must answer by then.
    by: tokio::time::Instant,
}

impl Greeting {
    /// Takes a chunk of standard output; once the ready line is whole, returns what followed.
    fn out(&mut self, data: &[u8], marker: &str) -> Option<Vec<u8>> {
        self.out.extend_from_slice(data);
        let needle = format!("{marker} ready ");
        let start = find(&self.out, needle.as_bytes())? + needle.len();
        let end = start + self.out[start..].iter().position(|&b| b == b'\n')?;
        // Anything but a pid is no kept shell of ours: it stays unanswered, and the greeting
        // deadline decides.
        self.pid = Some(
            std::str::from_utf8(&self.out[start..end])
                .ok()?
                .trim()
                .parse()
                .ok()?,
        );
        Some(self.out[end + 1..].to_vec())
    }

    /// Takes a chunk of standard error (what the login wrote before the shell ran, then the
    /// ready line); once the ready line is seen, returns what followed.
    fn err(&mut self, data: &[u8], marker: &str) -> Option<Vec<u8>> {
        self.err.extend_from_slice(data);
        let needle = format!("{marker} ready\n");
        let at = find(&self.err, needle.as_bytes())? + needle.len();
        self.err_done = true;
        Some(self.err[at..].to_vec())
    }
}

impl KeptShell {
    /// Starts the shell on `handle` and runs `command` in it: the command goes out with the
    /// shell's greeting, once sshd opens the channel's window, not a round trip later after
    /// the shell's answer (issue 33). The shell must answer within `answer_within` (a login
    /// whose forced command never reads its input never answers): else `ShellError::Stalled`.
    /// The greeting's first line is `exit 0 # <marker>`, so a forced command that is a shell
    /// reading its input stops there and never runs the command: a login that does not run the
    /// loop gives `ShellError::Unavailable`, and the command can go to a channel of its own.
    pub async fn start(
        handle: &russh::client::Handle<impl russh::client::Handler>,
        command: &str,
        stop: &mut Stop,
        sink: &dyn LineSink,
        answer_within: std::time::Duration,
    ) -> Result<(Option<Self>, ExecOutput), ShellError> {
        let marker = format!("weft-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let by = tokio::time::Instant::now() + answer_within;
        let opened = async {
            let channel = handle.channel_open_session().await?;
            channel.exec(true, driver(&marker).as_bytes()).await?;
            Ok::<_, ShellError>(channel.split())
        };
        let (read, write) = match stop.bound(tokio::time::timeout_at(by, opened)).await {
            Err(cut) => return Err(ShellError::Cut { pid: None, cut }),
            Ok(Err(_)) => return Err(ShellError::Stalled),
            Ok(Ok(opened)) => opened?,
        };
        let shell = KeptShell {
            read,
            write,
            marker: marker.clone(),
            pid: 0,
        };
        let greeting = Greeting {
            out: Vec::new(),
            err: Vec::new(),
            pid: None,
            err_done: false,
            by,
        };
        shell
            .exchange(
                format!("exit 0 # {marker}\n"),
                command,
                stop,
                sink,
                Some(greeting),
            )
            .await
    }

    /// Runs `command`, streaming its lines to `sink` as they arrive, until `stop` fires (then
    /// `ShellError::Cut`: the shell must get TERM, and is not used again).
    pub async fn run(
        self,
        command: &str,
        stop: &mut Stop,
        sink: &dyn LineSink,
    ) -> Result<(Option<Self>, ExecOutput), ShellError> {
        self.exchange(String::new(), command, stop, sink, None)
            .await
    }

    /// Sends `first` (the greeting, on a new shell) then `command` and its marker, and reads
    /// the command's output and status; with `greeting`, the shell's answer to it first.
    async fn exchange(
        self,
        first: String,
        command: &str,
        stop: &mut Stop,
        sink: &dyn LineSink,
        mut greeting: Option<Greeting>,
    ) -> Result<(Option<Self>, ExecOutput), ShellError> {
        let KeptShell {
            mut read,
            write,
            marker,
            mut pid,
        } = self;
        // A line equal to the marker would end the command early; a nonce makes that
        // impossible for anything weft sends, and a host can only lie about its own output.
        let text = format!("{first}{command}\n{marker}\n");
        let mut out = Scanner::new(Stream::Stdout, format!("\n{marker} "));
        let mut err = Scanner::new(Stream::Stderr, format!("\n{marker}\n"));
        let mut status: Option<Vec<u8>> = None;
        {
            // Sent while the answer is read: on a new channel the write waits for sshd to
            // open its window, which comes with the reply to the shell's start, and a channel
            // that ends instead never opens it. Polled to its end, never started again.
            let mut sending = std::pin::pin!(write.data_bytes(text));
            let mut sent = false;
            loop {
                if greeting
                    .as_ref()
                    .is_some_and(|g| g.pid.is_some() && g.err_done)
                {
                    pid = greeting.take().and_then(|g| g.pid).unwrap_or_default();
                }
                if sent && err.done && status.as_ref().is_some_and(|s| s.contains(&b'\n')) {
                    break;
                }
                // The pid to TERM when the command is cut short, once the shell said it.
                let known = match &greeting {
                    None => Some(pid),
                    Some(g) => g.pid,
                };
                let wait = async {
                    if sent {
                        return Ok(Some(read.wait().await));
                    }
                    tokio::select! {
                        written = &mut sending => written.map(|()| None),
                        msg = read.wait() => Ok(Some(msg)),
                    }
                };
                // Until the shell said its pid; then the command runs, bounded by its own
                // deadline, as a command on a shell that answered earlier.
                let waited = match &greeting {
                    Some(g) if g.pid.is_none() => {
                        match stop.bound(tokio::time::timeout_at(g.by, wait)).await {
                            // The command went out with the greeting: a login slower than
                            // the deadline would still run it, unless the channel ends now.
                            Ok(Err(_)) => {
                                end_channel(&write).await;
                                return Err(ShellError::Stalled);
                            }
                            Ok(Ok(msg)) => Ok(msg),
                            Err(cut) => Err(cut),
                        }
                    }
                    _ => stop.bound(wait).await,
                };
                let msg = match waited {
                    Ok(msg) => msg?,
                    Err(cut) if known.is_some() => return Err(ShellError::Cut { pid: known, cut }),
                    Err(cut) => return Err(cut_unanswered(&write, cut).await),
                };
                let Some(msg) = msg else {
                    sent = true;
                    continue;
                };
                match msg {
                    Some(ChannelMsg::Data { data }) => {
                        let data = match greeting.as_mut() {
                            Some(g) if g.pid.is_none() => match g.out(&data, &marker) {
                                Some(rest) => rest,
                                None => continue,
                            },
                            _ => data.to_vec(),
                        };
                        match status.as_mut() {
                            Some(status) => status.extend_from_slice(&data),
                            None => status = out.push(&data, sink),
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        let data = match greeting.as_mut() {
                            Some(g) if !g.err_done => match g.err(&data, &marker) {
                                Some(rest) => rest,
                                None => continue,
                            },
                            _ => data.to_vec(),
                        };
                        err.push(&data, sink);
                    }
                    Some(
                        ChannelMsg::WindowAdjusted { .. }
                        | ChannelMsg::Success
                        | ChannelMsg::ExtendedData { .. },
                    ) => {}
                    // Before the shell's answer: the login ran something else, which read the
                    // greeting's `exit 0` if it read anything, and ended (exited, closed, or
                    // the start was refused).
                    _ if known.is_none() => return Err(ShellError::Unavailable),
                    _ => return Err(ShellError::Lost),
                }
            }
        }
        let status = status.unwrap_or_default();
        // A process the command left in the background still writes to the shell's output:
        // what follows the status line is its, not this command's (nor a broken status).
        let (line, stray) = status.split_at(
            status
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(status.len()),
        );
        if stray.len() > 1 {
            tracing::debug!(
                target: "weft::ssh",
                "output of a background process after `{command}`: {:?}",
                String::from_utf8_lossy(&stray[1..])
            );
        }
        let code = std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .ok_or(ShellError::Lost)?;
        let output = ExecOutput {
            stdout: out.capture.finish(sink),
            stderr: err.capture.finish(sink),
            code,
        };
        let shell = KeptShell {
            read,
            write,
            marker,
            pid,
        };
        Ok((Some(shell), output))
    }
}

/// A new shell's command cut short before the shell answered: it may have started, and no
/// pid is known, so the channel gets TERM and is closed (as a command on a channel of its
/// own), within a moment.
async fn cut_unanswered(write: &ChannelWriteHalf<Msg>, cut: Cut) -> ShellError {
    end_channel(write).await;
    ShellError::Cut { pid: None, cut }
}

/// Sends TERM on a channel whose shell has not answered, and closes it, within a moment.
/// sshd passes no signal to a forced command, but once the channel is closed the shell's
/// answer to the greeting meets a closed pipe and ends it before it reads the command.
async fn end_channel(write: &ChannelWriteHalf<Msg>) {
    let end = async {
        let _ = write.signal(russh::Sig::TERM).await;
        let _ = write.close().await;
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), end).await;
}

/// One stream of a command in the kept shell: bytes go to the capture except the end marker,
/// and any tail that could still be the start of it is held back until more arrives.
struct Scanner {
    capture: Capture,
    needle: Vec<u8>,
    held: Vec<u8>,
    done: bool,
}

impl Scanner {
    fn new(stream: Stream, needle: String) -> Self {
        Scanner {
            capture: Capture::new(stream),
            needle: needle.into_bytes(),
            held: Vec::new(),
            done: false,
        }
    }

    /// Takes a chunk; once the marker is seen, returns what followed it on the stream.
    fn push(&mut self, data: &[u8], sink: &dyn LineSink) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        self.held.extend_from_slice(data);
        if let Some(pos) = find(&self.held, &self.needle) {
            self.capture.push(&self.held[..pos], sink);
            self.done = true;
            let rest = self.held[pos + self.needle.len()..].to_vec();
            self.held = Vec::new();
            return Some(rest);
        }
        let keep = (self.needle.len() - 1).min(self.held.len());
        let cut = self.held.len() - keep;
        if cut > 0 {
            self.capture.push(&self.held[..cut], sink);
            self.held.drain(..cut);
        }
        None
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::NoLines;

    #[test]
    fn the_marker_is_found_across_chunks_and_output_before_it_is_kept_whole() {
        let mut s = Scanner::new(Stream::Stdout, "\nweft-x ".into());
        assert_eq!(s.push(b"hello\nwor", &NoLines), None);
        assert_eq!(s.push(b"ld\n\nwef", &NoLines), None);
        assert_eq!(s.push(b"t-x 3\n", &NoLines), Some(b"3\n".to_vec()));
        assert_eq!(s.capture.finish(&NoLines), "hello\nworld\n");
    }

    fn greeting() -> Greeting {
        Greeting {
            out: Vec::new(),
            err: Vec::new(),
            pid: None,
            err_done: false,
            by: tokio::time::Instant::now(),
        }
    }

    #[test]
    fn the_shell_s_answer_is_found_across_chunks_after_what_the_login_wrote() {
        let mut g = greeting();
        assert_eq!(g.out(b"motd line\nweft-x rea", "weft-x"), None);
        assert_eq!(g.out(b"dy 42", "weft-x"), None);
        assert_eq!(g.out(b"\nhello\n", "weft-x"), Some(b"hello\n".to_vec()));
        assert_eq!(g.pid, Some(42));
        assert_eq!(g.err(b"stty: not a tty\nweft-x ready", "weft-x"), None);
        assert_eq!(g.err(b"\noops\n", "weft-x"), Some(b"oops\n".to_vec()));
        assert!(g.err_done);
    }

    #[test]
    fn an_answer_without_a_pid_is_no_answer() {
        let mut g = greeting();
        assert_eq!(g.out(b"weft-x ready nope\n", "weft-x"), None);
        assert_eq!(g.pid, None);
    }

    #[test]
    fn output_without_a_final_newline_keeps_its_last_line() {
        let mut s = Scanner::new(Stream::Stderr, "\nweft-x\n".into());
        assert_eq!(s.push(b"no newline\nweft-x\n", &NoLines), Some(Vec::new()));
        assert_eq!(s.capture.finish(&NoLines), "no newline");
    }
}
