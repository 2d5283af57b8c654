//! The project `keel demo` tells its story in: the sample application's
//! portable migrations, then keel.toml with a `demo` environment and a
//! fresh signing key for the guarded run.

use super::ScaffoldError;
use include_dir::{Dir, include_dir};
use std::path::{Path, PathBuf};

/// The sample application's migrations, as shipped in the repository.
static SAMPLE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// The last sample migration the demo takes. The four up to it are plain
/// SQL that PostgreSQL and SQLite both run; the zero-downtime examples after
/// it (a backfilled name split, an expand-contract rename with a trigger, a
/// concurrent index) are PostgreSQL's and stay out of the SQLite demo.
pub(crate) const PORTABLE_UNTIL: &str = "20260102090000";

/// The signer of the demo's execution records.
const SIGNER: &str = "demo@keel.invalid";

/// Writes `root/migrations/` with the sample's portable migrations.
pub(crate) fn sample(root: &Path) -> Result<(), ScaffoldError> {
    let dir = root.join("migrations");
    SAMPLE.extract(&dir)?;
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.get(..14).is_some_and(|v| v > PORTABLE_UNTIL) {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// keel.toml with a `demo` environment and a signer, a fresh ed25519 key in
/// keys/demo made by keel itself, and allowed_signers naming it.
pub(crate) fn guarded_run_config(root: &Path) -> Result<(), ScaffoldError> {
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
fn generate_key(path: &Path) -> Result<String, ScaffoldError> {
    use std::io::Read;
    let failed = |what: String| ScaffoldError::Io(std::io::Error::other(what));
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| failed(format!("cannot read /dev/urandom for the demo key: {e}")))?;
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let private = ssh_key::PrivateKey::from(pair);
    let text = private
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| failed(format!("encoding the demo key: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())?;
    let public = private
        .public_key()
        .to_openssh()
        .map_err(|e| failed(format!("encoding the demo key: {e}")))?;
    std::fs::write(path.with_extension("pub"), format!("{public} demo\n"))?;
    Ok(public)
}

/// The newest `*.json` record of `migration` (its id), relative to `root`.
pub(crate) fn newest_record(root: &Path, migration: &str) -> Option<PathBuf> {
    let relative = Path::new("records").join(migration);
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(&relative))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let last = files.pop()?;
    Some(relative.join(last.file_name()?))
}
