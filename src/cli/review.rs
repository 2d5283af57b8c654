//! `keel review [--base REF] [--post] [--check]`: the Markdown summary of the
//! migrations a branch adds or changes, for its pull request.

use super::Ctx;
use crate::error::{Error, Result};
use crate::migration::Migration;
use crate::review::changed::{self, Change};
use crate::review::{Reviewed, RunbookState, github, markdown};
use crate::runbook::{Runbook, binding, path_for, render, sizes};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The branch to compare with (default: the merge base with the
    /// repository's default branch); outside git, the pending migrations
    #[arg(long, value_name = "REF")]
    pub(crate) base: Option<String>,
    /// Create, or update, keel's one comment on the pull request (GitHub
    /// Actions: GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_EVENT_PATH, GITHUB_API_URL)
    #[arg(long)]
    pub(crate) post: bool,
    /// Exit 3 when a changed migration's runbook is missing, stale or not committed
    #[arg(long)]
    pub(crate) check: bool,
    /// Folder of the runbooks
    #[arg(long, default_value = "runbooks")]
    pub(crate) runbooks: PathBuf,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    let (against, folders) =
        match changed::changes(Path::new("."), &ctx.migrations_dir(), args.base.as_deref())
            .map_err(Error::Usage)?
        {
            Some(c) => (
                format!("since {} (merge base {})", c.base, c.merge_base),
                c.folders,
            ),
            None => pending(ctx, &files).await?,
        };
    let kept = sizes::load_all(&args.runbooks, &ctx.config).map_err(Error::Usage)?;
    let live = live_estimates(ctx, &files, &folders).await;
    let head = head_link();
    let items: Vec<Reviewed> = folders
        .iter()
        .map(|(folder, change)| {
            let m = files.iter().find(|m| &m.id() == folder);
            review(ctx, &args, (folder, *change), m, (&files, &kept), &head).map(|mut r| {
                r.live_estimate = live.get(folder).cloned();
                r
            })
        })
        .collect::<Result<_>>()?;
    let body = markdown(&against, &items);
    if ctx.out.json {
        ctx.json(serde_json::json!({"against": against, "migrations": items, "markdown": body}));
    } else {
        ctx.out.data(body.trim_end());
    }
    if args.post {
        let target = github::Target::from_env().map_err(Error::Usage)?;
        let number = target.number;
        let text = body.clone();
        let posted = tokio::task::spawn_blocking(move || target.upsert(&text))
            .await
            .map_err(|e| Error::Other(e.into()))?
            .map_err(|e| Error::Other(anyhow::anyhow!(e)))?;
        ctx.out.progress(&match posted {
            github::Posted::Created(url) => {
                format!("created keel's review comment on pull request #{number}: {url}")
            }
            github::Posted::Updated(url) => {
                format!("updated keel's review comment on pull request #{number}: {url}")
            }
        });
    }
    let behind: Vec<String> = items
        .iter()
        .filter(|r| r.runbook_state.as_ref().is_some_and(|s| !s.ok()))
        .map(|r| r.id.clone())
        .collect();
    if args.check && !behind.is_empty() {
        return Err(Error::Check(format!(
            "the runbook of {} is missing, stale or not committed\n  fix: run `keel runbook VERSION` for each and commit the runbooks",
            behind.join(", ")
        )));
    }
    Ok(())
}

/// Outside git: the migrations the database has not applied.
async fn pending(ctx: &Ctx, files: &[Migration]) -> Result<(String, BTreeMap<String, Change>)> {
    let mut db = ctx.connect().await?;
    let rows = db.tracking_rows().await;
    let shown = db.display_url().to_string();
    db.close().await;
    let entries = crate::migrator::reconcile(files, rows?);
    let folders = crate::migrator::pending(&entries, None)
        .into_iter()
        .map(|m| (m.id(), Change::Added))
        .collect();
    Ok((format!("pending on {shown} (not a git work tree)"), folders))
}

/// `--env E`: each migration's estimate from E's live statistics, when E
/// answers (else the stored sizes speak, and a line says why).
async fn live_estimates(
    ctx: &Ctx,
    files: &[Migration],
    folders: &BTreeMap<String, Change>,
) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let Some(env) = ctx.target().env() else {
        return out;
    };
    let live = async {
        let mut db = ctx.connect().await?;
        let target = super::dry_run::Target::of(db.as_mut()).await;
        let live = target.live(db.as_mut()).await;
        db.close().await;
        Ok::<_, Error>((target, live?))
    }
    .await;
    let (target, Some(live)) = (match live {
        Ok(l) => l,
        Err(e) => {
            ctx.out.progress(&format!(
                "{env} did not answer ({e}); the estimates are those of the stored sizes"
            ));
            return out;
        }
    }) else {
        return out;
    };
    let version = match target {
        super::dry_run::Target::Postgres(v) => v,
        super::dry_run::Target::Other(_) => None,
    };
    for m in files.iter().filter(|m| folders.contains_key(&m.id())) {
        let plans = crate::analysis::plan::build(&[m], true, version, Some(live.clone()));
        if let Some(ms) = plans.first().and_then(|p| p.estimated_ms) {
            out.insert(
                m.id(),
                (env.to_string(), crate::analysis::estimate::human_ms(ms)),
            );
        }
    }
    out
}

fn review(
    ctx: &Ctx,
    args: &Args,
    (folder, change): (&str, Change),
    m: Option<&Migration>,
    (files, kept): (&[Migration], &[sizes::Sizes]),
    head: &Option<String>,
) -> Result<Reviewed> {
    let Some(m) = m.filter(|_| change != Change::Removed) else {
        return Ok(Reviewed {
            id: folder.to_string(),
            change: Change::Removed,
            runbook: None,
            runbook_state: None,
            link: String::new(),
            live_estimate: None,
        });
    };
    let analysis = crate::analysis::analyze::Analyzer::offline(true).analyze(m);
    let rb = Runbook::build(m, files, &ctx.config, &analysis, kept);
    let path = path_for(&args.runbooks, m);
    let state = runbook_state(&path, m, &rb)?;
    let shown = path.to_string_lossy().trim_start_matches("./").to_string();
    Ok(Reviewed {
        id: m.id(),
        change,
        runbook: Some(rb),
        runbook_state: Some(state),
        link: match head {
            Some(base) => format!("{base}/{shown}"),
            None => shown,
        },
        live_estimate: None,
    })
}

/// Whether the runbook on disk is the one keel renders now, and committed.
fn runbook_state(path: &Path, m: &Migration, rb: &Runbook) -> Result<RunbookState> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(RunbookState::Missing);
    };
    let rendered = render(Path::new("."), rb).map_err(|e| Error::Usage(e.to_string()))?;
    let (have, want) = (binding::reviewed(&text), binding::reviewed(&rendered));
    if have != want {
        let why = match crate::runbook::marker(&text) {
            Some(mk) if mk.checksum != m.checksum => {
                "rendered before the migration last changed".to_string()
            }
            _ => match binding::first_difference(&have, &want) {
                Some((line, _, _)) => format!("line {line} differs from what keel renders now"),
                None => "it differs from what keel renders now".into(),
            },
        };
        return Ok(RunbookState::Stale(why));
    }
    Ok(if changed::committed(Path::new("."), path) {
        RunbookState::Fresh
    } else {
        RunbookState::Uncommitted
    })
}

/// On GitHub Actions, where the pull request's files are read:
/// `https://github.com/OWNER/NAME/blob/HEAD_SHA`.
fn head_link() -> Option<String> {
    let server = std::env::var("GITHUB_SERVER_URL").ok()?;
    let repo = std::env::var("GITHUB_REPOSITORY").ok()?;
    let event: serde_json::Value =
        serde_json::from_slice(&std::fs::read(std::env::var("GITHUB_EVENT_PATH").ok()?).ok()?)
            .ok()?;
    let sha = event["pull_request"]["head"]["sha"].as_str()?.to_string();
    if !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!(
        "{}/{repo}/blob/{sha}",
        server.trim_end_matches('/')
    ))
}
