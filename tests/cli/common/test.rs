//! One `keel` run and everything a user sees of it, asserted in one call,
//! in the style of just's `tests/test.rs`:
//!
//! ```ignore
//! p.test(["--env", "prod", "status"])
//!     .stderr_contains("environment `prod` is not in keel.toml (it has: staging)")
//!     .code(2)
//!     .run();
//! ```
//!
//! stdout and stderr are checked exactly with `.stdout(..)`/`.stderr(..)`,
//! or for a part with `.stdout_contains(..)`/`.stderr_contains(..)`; the
//! exit code is 0 unless `.code(..)` says otherwise, and is always checked.
//! A failed check shows the command and all three of what keel did.

use super::Project;

/// A `keel` run to make, with what it must print and exit with.
#[must_use = "a Test does nothing until .run()"]
pub struct Test<'p> {
    project: &'p Project,
    args: Vec<String>,
    env: Vec<(String, Option<String>)>,
    stdout: Option<String>,
    stdout_contains: Vec<String>,
    stderr: Option<String>,
    stderr_contains: Vec<String>,
    code: i32,
}

/// What a finished run printed, for checks the builder does not make
/// (a JSON document, the database afterwards).
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl Ran {
    /// stdout as the one JSON document `--format json` prints.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Project {
    /// `keel ARGS` in this project, on its database (see [`Project::keel`]).
    pub fn test<I, S>(&self, args: I) -> Test<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Test {
            project: self,
            args: args.into_iter().map(|a| a.as_ref().to_string()).collect(),
            env: Vec::new(),
            stdout: None,
            stdout_contains: Vec::new(),
            stderr: None,
            stderr_contains: Vec::new(),
            code: 0,
        }
    }
}

impl Test<'_> {
    /// Sets an environment variable for this run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable (`DATABASE_URL`, say) for this run.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// stdout, exactly.
    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout = Some(text.into());
        self
    }

    /// A part of stdout (may be given more than once).
    pub fn stdout_contains(mut self, text: &str) -> Self {
        self.stdout_contains.push(text.into());
        self
    }

    /// stderr, exactly.
    pub fn stderr(mut self, text: &str) -> Self {
        self.stderr = Some(text.into());
        self
    }

    /// A part of stderr (may be given more than once).
    pub fn stderr_contains(mut self, text: &str) -> Self {
        self.stderr_contains.push(text.into());
        self
    }

    /// The exit code (0 unless set).
    pub fn code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }

    /// Runs keel and checks everything set; panics with the whole run when
    /// a check fails.
    pub fn run(self) -> Ran {
        let mut cmd = self.project.keel();
        cmd.args(&self.args);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        let out = cmd.output().expect("run keel");
        let ran = Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        };
        let mut wrong = Vec::new();
        if ran.code != Some(self.code) {
            wrong.push(format!("exit code {:?}, expected {}", ran.code, self.code));
        }
        check(
            &mut wrong,
            "stdout",
            &ran.stdout,
            &self.stdout,
            &self.stdout_contains,
        );
        check(
            &mut wrong,
            "stderr",
            &ran.stderr,
            &self.stderr,
            &self.stderr_contains,
        );
        assert!(
            wrong.is_empty(),
            "keel {}:\n  {}\n--- exit code: {:?}\n--- stdout:\n{}--- stderr:\n{}---",
            self.args.join(" "),
            wrong.join("\n  "),
            ran.code,
            ran.stdout,
            ran.stderr
        );
        ran
    }
}

fn check(wrong: &mut Vec<String>, name: &str, got: &str, exact: &Option<String>, parts: &[String]) {
    if let Some(want) = exact
        && got != want
    {
        wrong.push(format!("{name} is not exactly {want:?}"));
    }
    for part in parts {
        if !got.contains(part.as_str()) {
            wrong.push(format!("{name} lacks {part:?}"));
        }
    }
}
