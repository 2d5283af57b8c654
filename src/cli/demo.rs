//! `keel demo`: the story of a release on the embedded SQLite default, in a
//! temporary folder, with no server and no questions asked. The project it
//! runs in is [`crate::scaffold::demo`]'s; this file tells the story.

use super::{Cli, Global};
use crate::error::{Error, Result};
use crate::scaffold::demo;
use clap::Parser;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Keep the temporary folder and print its path
    #[arg(long)]
    pub(crate) keep: bool,
}

pub(crate) async fn run(global: Global, args: Args) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("keel-demo-").tempdir()?;
    let root = dir.path().to_path_buf();
    demo::sample(&root)?;
    std::env::set_current_dir(&root)?;
    let quiet = global.quiet;
    let say = |text: &str| {
        if !quiet {
            println!("{text}");
        }
    };
    say(&format!(
        "keel demo: a release of the sample application, on the embedded default (sqlite://keel.db)\n\
         in {}; every step below is a command you can run in your own project.\n",
        root.display()
    ));
    let steps: &[(&str, &[&str])] = &[
        (
            "Four migrations are waiting: users, posts, comments, then profiles.",
            &["status"],
        ),
        (
            "Review what would run, in order. Nothing changes yet.",
            &["up", "--dry-run", "--to", "20260101090000"],
        ),
        (
            "Apply the sample schema (each migration commits with its tracking row).",
            &["up", "--to", "20260101090200"],
        ),
        (
            "Load realistic data: names with accents, apostrophes, one word, four words, empty and NULL.",
            &["seed"],
        ),
        (
            "Look at the column a later migration will split, before touching it.",
            &["inspect", "users.name"],
        ),
        (
            "Try the pending profiles migration in a transaction that is rolled back.",
            &["validate"],
        ),
        ("Apply it: one profile per existing user.", &["up"]),
        ("Who applied what, when, and how long it took.", &["status"]),
        ("Roll the last migration back.", &["down"]),
    ];
    let mut n = 0;
    for (why, argv) in steps {
        n += 1;
        step(n, why, argv, quiet).await?;
    }

    // The guarded run: production's way of applying the same migration.
    demo::guarded_run_config(&root)?;
    say(
        "keel.toml now has a `demo` environment that allows --yes (confirm = \"auto\"), and a\n\
         throwaway ed25519 key in keys/demo signs execution records (allowed_signers lists it).\n",
    );
    const PROFILES: &str = "20260102090000";
    let guarded: &[(&str, &[&str])] = &[
        (
            "Render the runbook a reviewer reads in the pull request: SQL, locks, checklist, commands, rollback.",
            &["runbook", PROFILES],
        ),
        (
            "The guarded run: runbook checksum, checklist, dry run, backup, migrate, smoke check, signed record.",
            &["execute", PROFILES, "--env", "demo", "--yes"],
        ),
    ];
    for (why, argv) in guarded {
        n += 1;
        step(n, why, argv, quiet).await?;
    }
    let record = demo::newest_record(&root, "20260102090000_add_user_profiles")
        .ok_or_else(|| Error::Other(anyhow::anyhow!("the guarded run wrote no record")))?;
    let record = record.display().to_string();
    n += 1;
    step(
        n,
        "An auditor checks the record's signature, place, hash chain and runbook, and that the database registered it (`ssh-keygen -Y verify` accepts the signature too).",
        &["record", "verify", &record],
        quiet,
    )
    .await?;
    n += 1;
    step(
        n,
        "Roll it back (a migration that destroyed data gets it back from the backup execute made).",
        &["down"],
        quiet,
    )
    .await?;
    say(
        "The sample in migrations/ goes on with zero-downtime changes for PostgreSQL: a name split\n\
         filled by a batched, resumable backfill (`keel backfill V`), an expand-contract rename\n\
         (`keel new NAME --template rename-column`), and an index built concurrently.\n\
         The story goes on in your own project: `keel new NAME`, `keel up`, `keel status`.",
    );
    if args.keep {
        let kept = dir.keep();
        say(&format!("kept {}", kept.display()));
    }
    Ok(())
}

/// Runs one step of the story: says why, shows the command, runs it on the
/// embedded default.
async fn step(n: usize, why: &str, argv: &[&str], quiet: bool) -> Result<()> {
    if !quiet {
        println!("── {n}. {why}\n$ keel {}", argv.join(" "));
    }
    // Always the embedded default, even when DATABASE_URL is set.
    let mut full = vec!["keel", "--database-url", "sqlite://keel.db"];
    full.extend_from_slice(argv);
    let mut cli = Cli::try_parse_from(&full).map_err(|e| Error::Usage(e.to_string()))?;
    cli.global.quiet = quiet;
    Box::pin(super::run(cli, Default::default())).await?;
    if !quiet {
        println!();
    }
    Ok(())
}
