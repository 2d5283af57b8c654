//! Telling people that a guarded run went wrong: the summary goes to stderr,
//! into the record, to `alert_command` from keel.toml (run with `sh -c`,
//! the summary on its stdin), and to the environment's webhook
//! (`alert_webhook_env` names the variable holding its URL: webhook URLs
//! are secrets, so keel.toml never holds one and keel never prints one).

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

/// How long one webhook attempt may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL of the webhook that variable `var` names, checked before a run
/// starts so that a missing secret is found then, not when the alert is due.
pub(crate) fn webhook_url(var: &str) -> Result<String, String> {
    let url = std::env::var(var).unwrap_or_default();
    if url.trim().is_empty() {
        return Err(format!(
            "alert_webhook_env names ${var}, which is not set (or empty): the alert of a failed run would reach nobody; nothing was changed\n  fix: export {var}=https://… (the webhook's URL) before running keel, or remove alert_webhook_env"
        ));
    }
    match url::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {
            Ok(url.trim().to_string())
        }
        // The value is a secret: say what is wrong with it, never what it is.
        _ => Err(format!(
            "${var} does not hold an http(s) URL; nothing was changed\n  fix: set {var} to the webhook's full URL (https://hooks.example.com/…)"
        )),
    }
}

/// Posts `summary` to the webhook at `url` as Slack-compatible JSON
/// (`text`, plus keel's fields for receivers that read them), one retry
/// after a second when the first attempt fails or the server answers 5xx
/// or 429. `var` names the URL in what is said: the URL itself is secret.
pub(crate) fn post_webhook(
    var: &str,
    url: &str,
    summary: &str,
    fields: &[(&str, &str)],
) -> Result<String, String> {
    let mut body = serde_json::json!({ "text": summary });
    let keel: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
        .collect();
    body["keel"] = serde_json::Value::Object(keel);
    let payload = body.to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(WEBHOOK_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut last = String::new();
    for attempt in 1..=2 {
        if attempt == 2 {
            std::thread::sleep(Duration::from_secs(1));
        }
        let sent = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("User-Agent", "keel")
            .send(payload.as_str());
        match sent.map(|r| r.status().as_u16()) {
            Ok(code) if (200..300).contains(&code) => {
                return Ok(format!(
                    "webhook ${var} answered {code}{}",
                    if attempt == 2 {
                        " (second attempt)"
                    } else {
                        ""
                    }
                ));
            }
            Ok(code) if code == 429 || code >= 500 => {
                last = format!("webhook ${var} answered {code}");
            }
            Ok(code) => {
                return Err(format!(
                    "webhook ${var} answered {code}: the alert was refused\n  fix: check the URL in ${var} (a revoked or mistyped webhook answers 4xx)"
                ));
            }
            // ureq's error can quote the URL; only its kind is said.
            Err(e) => last = format!("webhook ${var} did not answer: {}", error_kind(&e)),
        }
    }
    Err(format!("{last}, twice; the alert did not reach it"))
}

/// What went wrong, without the URL a ureq error message may quote.
fn error_kind(e: &ureq::Error) -> &'static str {
    match e {
        ureq::Error::Timeout(_) => "timed out",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::ConnectionFailed => "connection failed",
        ureq::Error::Io(_) => "connection error",
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error",
        _ => "request failed",
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
