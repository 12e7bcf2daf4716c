//! What ends a command before its answer: its deadline (`--command-timeout`, a script's
//! `timeout`, what is left of `--host-timeout`) or an interrupt. Every wait of a command on the
//! host goes through one `Stop`, from the channel's opening to its last message.

use std::future::Future;
use std::pin::Pin;

use crate::transport::Cancel;

/// Why a command was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Its deadline passed.
    Deadline,
    /// The run was interrupted.
    Cancelled,
}

/// One command's deadline and cancel, waited on together.
pub struct Stop {
    pending: Pin<Box<dyn Future<Output = Cut> + Send>>,
    /// Once it fired: every later wait fails at once.
    fired: Option<Cut>,
}

impl Stop {
    /// Fires at `deadline` or when `cancel` does, whichever comes first; never without either.
    pub fn new(deadline: Option<tokio::time::Instant>, cancel: Option<Cancel>) -> Self {
        let pending = async move {
            let deadline = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let cancelled = async {
                match &cancel {
                    Some(cancel) => cancel.wait().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = deadline => Cut::Deadline,
                () = cancelled => Cut::Cancelled,
            }
        };
        Stop {
            pending: Box::pin(pending),
            fired: None,
        }
    }

    /// `future`'s output, unless the stop fires first.
    pub async fn bound<F: Future>(&mut self, future: F) -> Result<F::Output, Cut> {
        if let Some(cut) = self.fired {
            return Err(cut);
        }
        // The stop first: a command that floods its output is never ready to wait on.
        tokio::select! {
            biased;
            cut = &mut self.pending => {
                self.fired = Some(cut);
                Err(cut)
            }
            output = future => Ok(output),
        }
    }
}
