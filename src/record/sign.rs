//! Signing records as OpenSSH signatures (SSHSIG, PROTOCOL.sshsig).

use super::RecordError;
use ssh_key::{HashAlg, LineEnding, PrivateKey, SshSig};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The SSHSIG namespace of execution records: a signature made for another
/// purpose (git commits, files) is never accepted as a record's.
pub(crate) const NAMESPACE: &str = "keel-record";

/// Who signs records, and how.
#[derive(Debug, Clone)]
pub(crate) enum Signer {
    /// An unencrypted OpenSSH private key file (ed25519 or RSA).
    Key { principal: String, path: PathBuf },
    /// A command that reads the record on stdin and prints an armored SSH
    /// signature, e.g. `ssh-keygen -Y sign -f ~/.ssh/id_ed25519.pub -n
    /// keel-record` for a key held in ssh-agent or on a hardware token.
    Command { principal: String, command: String },
}

impl Signer {
    /// The signer keel.toml configures: `signing_command` if set, else
    /// `signing_key`; `None` when neither is. Relative key paths are
    /// relative to `project_dir`, and `~/` is the home folder.
    pub(crate) fn from_config(
        config: &crate::config::Config,
        project_dir: &Path,
    ) -> Result<Option<Signer>, RecordError> {
        if config.signing_command.is_none() && config.signing_key.is_none() {
            return Ok(None);
        }
        let principal = config.signer.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            RecordError::Signing(
                "keel.toml sets a signing key but no signer\n  fix: add signer = \"you@example.com\" to keel.toml: the principal auditors look up in allowed_signers".into(),
            )
        })?;
        if let Some(command) = &config.signing_command {
            return Ok(Some(Signer::Command {
                principal,
                command: command.clone(),
            }));
        }
        let raw = config.signing_key.clone().unwrap_or_default();
        Ok(Some(Signer::Key {
            principal,
            path: expand(&raw, project_dir),
        }))
    }

    pub(crate) fn principal(&self) -> &str {
        match self {
            Signer::Key { principal, .. } | Signer::Command { principal, .. } => principal,
        }
    }

    /// An armored SSH signature of `msg` in the `keel-record` namespace,
    /// checked against `msg` before it is returned.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<String, RecordError> {
        let armored = match self {
            Signer::Key { path, .. } => sign_with_key(path, msg)?,
            Signer::Command { command, .. } => sign_with_command(command, msg)?,
        };
        let sig = SshSig::from_pem(armored.trim_end()).map_err(|e| {
            RecordError::Signing(format!(
                "the signing command printed no OpenSSH signature ({e})\n  fix: it must read the record on stdin and print the signature, like `ssh-keygen -Y sign -f KEY -n {NAMESPACE}`"
            ))
        })?;
        if sig.namespace() != NAMESPACE {
            return Err(RecordError::Signing(format!(
                "the signature is for namespace `{}`, not `{NAMESPACE}`\n  fix: pass -n {NAMESPACE} to ssh-keygen in signing_command",
                sig.namespace()
            )));
        }
        let key = ssh_key::PublicKey::from(sig.public_key().clone());
        key.verify(NAMESPACE, msg, &sig).map_err(|e| {
            RecordError::Signing(format!(
                "the signature made for the record does not verify ({e})\n  fix: check signing_command signs stdin"
            ))
        })?;
        let mut out = armored.trim_end().to_string();
        out.push('\n');
        Ok(out)
    }
}

fn expand(path: &Path, project_dir: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if path.is_relative() {
        project_dir.join(path)
    } else {
        path.to_path_buf()
    }
}

/// A private key that others on the machine can read is no longer only its
/// owner's: ssh-keygen refuses to use one ("UNPROTECTED PRIVATE KEY FILE"),
/// and so does keel, before it reads the key.
#[cfg(unix)]
fn refuse_open_key(path: &Path) -> Result<(), RecordError> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        // Reading it says what is wrong.
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(RecordError::Signing(format!(
            "the signing key {} can be read by other users (mode {mode:04o}): a private key must be its owner's alone, and ssh-keygen refuses such a key too; nothing was signed\n  fix: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_open_key(_: &Path) -> Result<(), RecordError> {
    Ok(())
}

fn sign_with_key(path: &Path, msg: &[u8]) -> Result<String, RecordError> {
    refuse_open_key(path)?;
    let text = std::fs::read(path).map_err(|e| {
        RecordError::Signing(format!(
            "cannot read the signing key {}: {e}\n  fix: set signing_key in keel.toml to an OpenSSH private key (ssh-keygen -t ed25519 -f {})",
            path.display(),
            path.display()
        ))
    })?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| {
        RecordError::Signing(format!(
            "{} is not an OpenSSH private key ({e})\n  fix: point signing_key at a key made by ssh-keygen (the file without .pub)",
            path.display()
        ))
    })?;
    if key.is_encrypted() {
        return Err(RecordError::Signing(format!(
            "the signing key {} is protected by a passphrase\n  fix: add it to ssh-agent (ssh-add {}) and set signing_command = \"ssh-keygen -Y sign -f {}.pub -n {NAMESPACE}\" in keel.toml",
            path.display(),
            path.display(),
            path.display()
        )));
    }
    // SHA-512 is what ssh-keygen uses by default.
    let signed = match key.key_data().rsa() {
        Some(rsa) => sign_rsa(rsa, key.public_key().key_data().clone(), msg),
        None => key.sign(NAMESPACE, HashAlg::Sha512, msg),
    };
    let sig = signed.map_err(|e| {
        RecordError::Signing(format!(
            "signing with {} failed ({e})\n  fix: keel signs with ed25519 and RSA keys; use signing_command for other kinds",
            path.display()
        ))
    })?;
    sig.to_pem(LineEnding::LF)
        .map_err(|e| RecordError::Signing(format!("encoding the signature failed: {e}")))
}

/// SSHSIG with an RSA key: PKCS#1 v1.5 over SHA-512 of the SSHSIG signed
/// data (`rsa-sha2-512`), as ssh-keygen makes it.
fn sign_rsa(
    key: &ssh_key::private::RsaKeypair,
    public: ssh_key::public::KeyData,
    msg: &[u8],
) -> ssh_key::Result<SshSig> {
    use rsa::signature::{SignatureEncoding, Signer as _};
    let int = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or(ssh_key::Error::Crypto)
    };
    let private = rsa::RsaPrivateKey::from_components(
        int(&key.public.n)?,
        int(&key.public.e)?,
        int(&key.private.d)?,
        vec![int(&key.private.p)?, int(&key.private.q)?],
    )
    .map_err(|_| ssh_key::Error::Crypto)?;
    let signing = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private);
    let data = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, msg)?;
    let signature = signing
        .try_sign(&data)
        .map_err(|_| ssh_key::Error::Crypto)?;
    SshSig::new(
        public,
        NAMESPACE,
        HashAlg::Sha512,
        ssh_key::Signature::new(
            ssh_key::Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            signature.to_vec(),
        )?,
    )
}

fn sign_with_command(command: &str, msg: &[u8]) -> Result<String, RecordError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RecordError::Signing(format!("cannot run signing_command `{command}`: {e}"))
        })?;
    // Writing from a thread while reading stdout: a large record cannot
    // deadlock on full pipes.
    let mut stdin = child.stdin.take();
    let input = msg.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let out = child
        .wait_with_output()
        .map_err(|e| RecordError::Signing(format!("signing_command `{command}` failed: {e}")))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(RecordError::Signing(format!(
            "signing_command `{command}` failed ({}): {}\n  fix: run it by hand with a record on stdin; for ssh-agent keys check `ssh-add -l`",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    String::from_utf8(out.stdout).map_err(|_| {
        RecordError::Signing(format!(
            "signing_command `{command}` printed something that is not text"
        ))
    })
}
