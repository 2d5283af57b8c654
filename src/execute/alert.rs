//! Telling people that a guarded run went wrong: the summary goes to stderr,
//! into the record, and to `alert_command` from keel.toml (run with `sh -c`,
//! the summary on its stdin), so a pager or chat hook can pick it up.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long an alert command may take before keel stops waiting for it.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs `command` with `summary` on stdin and `KEEL_*` variables set.
/// Returns what happened, in words; an alert that cannot be sent never
/// hides the run's own outcome.
pub(crate) fn send(command: &str, summary: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start alert_command `{command}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(summary.as_bytes());
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return if status.success() {
                    Ok(format!("alert_command `{command}` ran"))
                } else {
                    Err(format!(
                        "alert_command `{command}` failed ({status}){}",
                        if err.trim().is_empty() {
                            String::new()
                        } else {
                            format!(": {}", err.trim())
                        }
                    ))
                };
            }
            Ok(None) if started.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "alert_command `{command}` took longer than {}s and was stopped",
                    LIMIT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("alert_command `{command}`: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_arrives_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("alert.txt");
        let cmd = format!(
            "cat > '{}'; echo \"$KEEL_OUTCOME\" >> '{}'",
            out.display(),
            out.display()
        );
        send(&cmd, "it broke\n", &[("KEEL_OUTCOME", "rolled_back")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "it broke\nrolled_back\n"
        );
        assert!(send("exit 3", "x", &[]).unwrap_err().contains("failed"));
    }
}
