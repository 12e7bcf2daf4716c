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

/// The loop the login shell runs: answer the marker with `ready` (which proves that it reads
/// what weft sends), then read lines up to the marker, run them, report the status.
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
         IFS= read -r __weft_l && [ \"$__weft_l\" = \"$__weft_m\" ] || exit 0; \
         printf '%s ready %s\\n' \"$__weft_m\" \"$$\"; \
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
    /// The shell never started (a restricted login, a forced command): use channels.
    Unavailable,
    /// The shell ended before the command reported its status.
    Lost,
    /// The command's deadline passed or the run was interrupted: the shell (process `pid`)
    /// must get TERM, which ends the command.
    Cut { pid: u32, cut: Cut },
    /// The connection failed.
    Ssh(SshError),
}

impl From<russh::Error> for ShellError {
    fn from(err: russh::Error) -> Self {
        ShellError::Ssh(err.into())
    }
}

impl KeptShell {
    /// Starts the shell on `handle` and waits for it to say it is ready; the caller bounds the
    /// wait (a login whose forced command never reads its input never answers).
    pub async fn start(
        handle: &russh::client::Handle<impl russh::client::Handler>,
    ) -> Result<Self, ShellError> {
        let marker = format!("weft-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let channel = handle.channel_open_session().await?;
        channel.exec(true, driver(&marker).as_bytes()).await?;
        let (mut read, write) = channel.split();
        write.data(format!("{marker}\n").as_bytes()).await?;
        let ready = format!("{marker} ready ");
        let mut got = Vec::new();
        while !got.ends_with(b"\n") {
            match read.wait().await {
                Some(ChannelMsg::Data { data }) => got.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { .. } | ChannelMsg::WindowAdjusted { .. }) => {}
                Some(ChannelMsg::Success) => {}
                // Exited, closed, or refused: this login does not run our loop.
                _ => return Err(ShellError::Unavailable),
            }
        }
        let pid = std::str::from_utf8(&got)
            .ok()
            .and_then(|line| line.strip_prefix(&ready))
            .and_then(|pid| pid.trim().parse().ok())
            .ok_or(ShellError::Unavailable)?;
        Ok(KeptShell {
            read,
            write,
            marker,
            pid,
        })
    }

    /// Runs `command`, streaming its lines to `sink` as they arrive, until `stop` fires (then
    /// `ShellError::Cut`: the shell must get TERM, and is not used again).
    pub async fn run(
        mut self,
        command: &str,
        stop: &mut Stop,
        sink: &dyn LineSink,
    ) -> Result<(Option<Self>, ExecOutput), ShellError> {
        let pid = self.pid;
        let cut = |cut| ShellError::Cut { pid, cut };
        // A line equal to the marker would end the command early; a nonce makes that
        // impossible for anything weft sends, and a host can only lie about its own output.
        let text = format!("{command}\n{}\n", self.marker);
        stop.bound(self.write.data(text.as_bytes()))
            .await
            .map_err(cut)??;
        let mut out = Scanner::new(Stream::Stdout, format!("\n{} ", self.marker));
        let mut err = Scanner::new(Stream::Stderr, format!("\n{}\n", self.marker));
        let mut status: Option<Vec<u8>> = None;
        loop {
            if err.done && status.as_ref().is_some_and(|s| s.contains(&b'\n')) {
                break;
            }
            let msg = stop.bound(self.read.wait()).await.map_err(cut)?;
            match msg {
                Some(ChannelMsg::Data { data }) => match status.as_mut() {
                    Some(status) => status.extend_from_slice(&data),
                    None => status = out.push(&data, sink),
                },
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    err.push(&data, sink);
                }
                Some(
                    ChannelMsg::WindowAdjusted { .. }
                    | ChannelMsg::Success
                    | ChannelMsg::ExtendedData { .. },
                ) => {}
                _ => return Err(ShellError::Lost),
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
        Ok((Some(self), output))
    }
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

    #[test]
    fn output_without_a_final_newline_keeps_its_last_line() {
        let mut s = Scanner::new(Stream::Stderr, "\nweft-x\n".into());
        assert_eq!(s.push(b"no newline\nweft-x\n", &NoLines), Some(Vec::new()));
        assert_eq!(s.capture.finish(&NoLines), "no newline");
    }
}
