//! `keel demo`: the story of a release on the embedded SQLite default, in a
//! temporary folder, with no server and no questions asked.

use super::{Cli, Global};
use crate::error::{Error, Result};
use clap::Parser;
use include_dir::{Dir, include_dir};

/// The sample application's migrations, as shipped in the repository.
static SAMPLE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// The last sample migration the demo takes. The four up to it are plain
/// SQL that PostgreSQL and SQLite both run; the zero-downtime examples after
/// it (a backfilled name split, an expand-contract rename with a trigger, a
/// concurrent index) are PostgreSQL's and stay out of the SQLite demo.
pub const PORTABLE_UNTIL: &str = "20260102090000";

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
    for entry in std::fs::read_dir(root.join("migrations"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.get(..14).is_some_and(|v| v > PORTABLE_UNTIL) {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
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
    write_guarded_run_config(&root)?;
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
    let record = newest_record(&root.join("records/20260102090000_add_user_profiles"))
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
    Box::pin(super::run(cli)).await?;
    if !quiet {
        println!();
    }
    Ok(())
}

/// keel.toml with a `demo` environment and a signer, a fresh ed25519 key in
/// keys/demo made by keel itself, and allowed_signers naming it.
fn write_guarded_run_config(root: &std::path::Path) -> Result<()> {
    const SIGNER: &str = "demo@keel.invalid";
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys)?;
    let key = keys.join("demo");
    let public = generate_key(&key)?;
    std::fs::write(
        root.join("allowed_signers"),
        format!("{SIGNER} namespaces=\"keel-record\" {public}\n"),
    )?;
    std::fs::write(
        root.join("keel.toml"),
        format!(
            "# Written by `keel demo`.\n\
             signer = \"{SIGNER}\"\n\
             signing_key = \"keys/demo\"\n\
             allowed_signers = \"allowed_signers\"\n\n\
             [environments.demo]\n\
             confirm = \"auto\"\n\
             require_signature = true\n\
             smoke = [\"SELECT 1 FROM users LIMIT 1\"]\n"
        ),
    )?;
    Ok(())
}

/// Writes an unencrypted OpenSSH ed25519 private key to `path` (mode 0600)
/// and returns its public key line.
fn generate_key(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| {
            Error::Other(anyhow::anyhow!(
                "cannot read /dev/urandom for the demo key: {e}"
            ))
        })?;
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let private = ssh_key::PrivateKey::from(pair);
    let text = private
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| Error::Other(anyhow::anyhow!("encoding the demo key: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())?;
    let public = private
        .public_key()
        .to_openssh()
        .map_err(|e| Error::Other(anyhow::anyhow!("encoding the demo key: {e}")))?;
    std::fs::write(path.with_extension("pub"), format!("{public} demo\n"))?;
    Ok(public)
}

/// The newest `*.json` record in `dir`, relative to the demo folder.
fn newest_record(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let last = files.pop()?;
    let name = last.file_name()?.to_owned();
    Some(std::path::Path::new("records/20260102090000_add_user_profiles").join(name))
}
