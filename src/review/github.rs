//! One comment on the pull request, kept up to date: found among the pull
//! request's comments by [`super::MARKER`] and edited, else created,
//! through GitHub's REST API (`GITHUB_API_URL` for GitHub Enterprise). The
//! token is sent to that API alone and never printed.

use serde_json::Value;
use std::time::Duration;

/// Where the comment goes, from the variables GitHub Actions sets.
pub(crate) struct Target {
    api: String,
    repo: String,
    pub(crate) number: u64,
    token: String,
}

/// What `upsert` did, with the comment's web address.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Posted {
    Created(String),
    Updated(String),
}

/// A variable that must be set, or what to do.
fn var(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            format!("--post needs {name}, which GitHub Actions sets\n  fix: run it in a pull_request workflow (`keel init github` writes one), or set {name}")
        })
}

impl Target {
    /// `GITHUB_TOKEN`, `GITHUB_REPOSITORY`, the pull request's number from
    /// the event file at `GITHUB_EVENT_PATH`, and `GITHUB_API_URL`.
    pub(crate) fn from_env() -> Result<Target, String> {
        let token = var("GITHUB_TOKEN")?;
        let repo = var("GITHUB_REPOSITORY")?;
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !repo
            .split_once('/')
            .is_some_and(|(o, n)| valid(o) && valid(n))
        {
            return Err(format!(
                "GITHUB_REPOSITORY is {repo:?}, not OWNER/NAME\n  fix: set it as GitHub Actions does"
            ));
        }
        let event_path = var("GITHUB_EVENT_PATH")?;
        let event: Value = std::fs::read(&event_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| {
                format!("cannot read the event {event_path}: {e}\n  fix: run --post in a pull_request workflow")
            })?;
        let number = event["pull_request"]["number"]
            .as_u64()
            .or_else(|| event["number"].as_u64())
            .ok_or_else(|| {
                format!("the event {event_path} is not a pull request's (no pull_request.number)\n  fix: run --post on `pull_request` events only")
            })?;
        let api = std::env::var("GITHUB_API_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "https://api.github.com".into());
        Ok(Target {
            api: api.trim_end_matches('/').to_string(),
            repo,
            number,
            token,
        })
    }

    /// Edits keel's comment on the pull request, or creates it.
    pub(crate) fn upsert(&self, body: &str) -> Result<Posted, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        let issue = format!("{}/repos/{}/issues/{}", self.api, self.repo, self.number);
        let payload = serde_json::json!({ "body": body }).to_string();
        if let Some(id) = self.find(&agent, &issue)? {
            let url = format!("{}/repos/{}/issues/comments/{id}", self.api, self.repo);
            let done = self.send(agent.patch(&url), &payload)?;
            return Ok(Posted::Updated(html_url(&done)));
        }
        let done = self.send(agent.post(&format!("{issue}/comments")), &payload)?;
        Ok(Posted::Created(html_url(&done)))
    }

    /// The id of the comment that carries the marker, page by page.
    fn find(&self, agent: &ureq::Agent, issue: &str) -> Result<Option<u64>, String> {
        for page in 1..=50 {
            let url = format!("{issue}/comments?per_page=100&page={page}");
            let comments = self.call(
                agent
                    .get(&url)
                    .header("Authorization", &format!("Bearer {}", self.token))
                    .header("Accept", "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", "2022-11-28")
                    .header("User-Agent", "keel")
                    .call(),
                &url,
            )?;
            let Some(list) = comments.as_array() else {
                return Err(format!("GET {url}: the answer is not a list of comments"));
            };
            if let Some(found) = list.iter().find(|c| {
                c["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(super::MARKER))
            }) {
                return Ok(found["id"].as_u64());
            }
            if list.len() < 100 {
                break;
            }
        }
        Ok(None)
    }

    fn send(
        &self,
        request: ureq::RequestBuilder<ureq::typestate::WithBody>,
        payload: &str,
    ) -> Result<Value, String> {
        let shown = request.uri_ref().map(|u| u.to_string()).unwrap_or_default();
        self.call(
            request
                .header("Authorization", &format!("Bearer {}", self.token))
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .header("User-Agent", "keel")
                .header("Content-Type", "application/json")
                .send(payload),
            &shown,
        )
    }

    /// The answer's JSON, or an error with GitHub's own message.
    fn call(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        url: &str,
    ) -> Result<Value, String> {
        let mut response = response.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let message = json["message"].as_str().unwrap_or("no message");
        let fix = match status {
            401 => "the token is not valid: check GITHUB_TOKEN",
            403 | 404 => {
                "the token may not write pull request comments: give the workflow `permissions: pull-requests: write`"
            }
            _ => "run it again; GitHub may be having trouble",
        };
        Err(format!(
            "GitHub answered {status} to {url}: {message}\n  fix: {fix}"
        ))
    }
}

fn html_url(comment: &Value) -> String {
    comment["html_url"].as_str().unwrap_or_default().to_string()
}
