//! `keel demo`: the story of a release on the embedded SQLite default, in a
//! temporary folder, with no server and no questions asked.

use super::{Cli, Global};
use crate::error::{Error, Result};
use clap::Parser;
use include_dir::{Dir, include_dir};

/// The sample application's migrations, as shipped in the repository.
static SAMPLE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the temporary folder and print its path
    #[arg(long)]
    pub keep: bool,
}

pub async fn run(global: Global, args: Args) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("keel-demo-").tempdir()?;
    let root = dir.path().to_path_buf();
    SAMPLE.extract(root.join("migrations"))?;
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
        ("And forward again.", &["up"]),
    ];
    for (i, (why, argv)) in steps.iter().enumerate() {
        say(&format!("── {}. {why}\n$ keel {}", i + 1, argv.join(" ")));
        // Always the embedded default, even when DATABASE_URL is set.
        let mut full = vec!["keel", "--database-url", "sqlite://keel.db"];
        full.extend_from_slice(argv);
        let mut cli = Cli::try_parse_from(&full).map_err(|e| Error::Usage(e.to_string()))?;
        cli.global.quiet = quiet;
        Box::pin(super::run(cli)).await?;
        say("");
    }
    say("The story goes on in your own project: `keel new NAME`, `keel up`, `keel status`.");
    if args.keep {
        let kept = dir.keep();
        say(&format!("kept {}", kept.display()));
    }
    Ok(())
}
