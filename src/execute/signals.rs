//! Signals during the part of a guarded run that changes the database.
//!
//! Ctrl-C, SIGTERM (a CI cancel, `kill`, a container stop) and SIGHUP (the
//! SSH session dropped) all mean "stop", but stopping between the commit
//! and the record is what leaves a production database changed with no
//! checks, no rollback and no record. So the first one is noted and the run
//! goes on to its end; a second one stops at once (the open transaction
//! rolls back; the intent record stays, and the next `execute` finishes or
//! records the run).

use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Writes a line to stderr. After SIGHUP the terminal is gone and a write
/// fails; that must not end the run (`eprintln!` would panic).
pub(crate) fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The first signal's name and when it came.
type First = Option<(&'static str, chrono::DateTime<chrono::Utc>)>;

/// Listens for Ctrl-C, SIGTERM and SIGHUP while it lives.
pub(crate) struct Signals {
    task: tokio::task::JoinHandle<()>,
    count: watch::Receiver<u32>,
    first: Arc<Mutex<First>>,
}

impl Signals {
    pub(crate) fn install() -> Signals {
        let (tx, rx) = watch::channel(0u32);
        let first = Arc::new(Mutex::new(None));
        let seen = first.clone();
        let task = tokio::spawn(async move {
            #[cfg(unix)]
            let (mut term, mut hup) = {
                use tokio::signal::unix::{SignalKind, signal};
                (
                    signal(SignalKind::terminate()).ok(),
                    signal(SignalKind::hangup()).ok(),
                )
            };
            loop {
                #[cfg(unix)]
                let name = tokio::select! {
                    r = tokio::signal::ctrl_c() => { if r.is_err() { return; } "Ctrl-C" }
                    Some(()) = async { match term.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => "SIGTERM",
                    Some(()) = async { match hup.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => "SIGHUP",
                };
                #[cfg(not(unix))]
                let name = {
                    if tokio::signal::ctrl_c().await.is_err() {
                        return;
                    }
                    "Ctrl-C"
                };
                let n = *tx.borrow() + 1;
                if n == 1 {
                    if let Ok(mut f) = seen.lock() {
                        *f = Some((name, chrono::Utc::now()));
                    }
                    note(&format!(
                        "keel: {name}: finishing this run first (checks, rollback if needed, record) so that nothing is left half-done; a second Ctrl-C or SIGTERM stops at once"
                    ));
                } else {
                    note(&format!(
                        "keel: {name} again: stopping now; an open transaction rolls back, and the intent record stays so that `keel execute` finishes or records this run"
                    ));
                }
                let _ = tx.send(n);
            }
        });
        Signals {
            task,
            count: rx,
            first,
        }
    }

    /// The first signal and when it came, for the record.
    pub(crate) fn received(&self) -> First {
        self.first.lock().ok().and_then(|f| *f)
    }

    /// How many signals came so far, as they come.
    pub(crate) fn count(&self) -> watch::Receiver<u32> {
        self.count.clone()
    }

    /// Resolves when a second signal arrives.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.count.clone();
        let _ = rx.wait_for(|n| *n >= 2).await;
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}
