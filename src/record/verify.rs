//! `keel record verify`: the signature against allowed signers, then the
//! hash chain back to the environment's first record.

use super::{AllowedSigners, NAMESPACE, Record, RecordError, signature_path};
use ssh_key::{HashAlg, PublicKey, SshSig};
use std::path::{Path, PathBuf};

/// A record whose signature and chain checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    pub path: PathBuf,
    pub record: Record,
    pub signer: String,
    /// `SHA256:…` of the signing key, as ssh-keygen prints it.
    pub fingerprint: String,
    /// The earlier records the chain runs through, newest first.
    pub chain: Vec<PathBuf>,
}

fn invalid(message: String) -> RecordError {
    RecordError::Invalid(message)
}

/// Checks `path`: its `.sig` is an SSHSIG in the `keel-record` namespace
/// over exactly the file's bytes, made by a key that `allowed` lists for the
/// record's signer; and every earlier record it links to is there,
/// unchanged, of the same environment, back to the first.
pub fn verify(path: &Path, allowed: &AllowedSigners) -> Result<Verified, RecordError> {
    let record = super::read(path)?;
    let bytes = std::fs::read(path).map_err(super::io(path))?;
    let sig_path = signature_path(path);
    let armored = match std::fs::read_to_string(&sig_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(invalid(format!(
                "record {} is not signed: {} is missing\n  fix: recover the .sig file from version control; an unsigned record proves nothing",
                path.display(),
                sig_path.display()
            )));
        }
        Err(source) => return Err(super::io(&sig_path)(source)),
    };
    let sig = SshSig::from_pem(armored.trim_end()).map_err(|e| {
        invalid(format!(
            "{} is not an OpenSSH signature ({e})\n  fix: recover it from version control",
            sig_path.display()
        ))
    })?;
    if sig.namespace() != NAMESPACE {
        return Err(invalid(format!(
            "{} was made for namespace `{}`, not `{NAMESPACE}`: it is not a record signature",
            sig_path.display(),
            sig.namespace()
        )));
    }
    let key = PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    key.verify(NAMESPACE, &bytes, &sig).map_err(|_| {
        invalid(format!(
            "the signature in {} does not match {}: the record was changed after it was signed\n  fix: do not trust this record; recover the signed version from version control",
            sig_path.display(),
            path.display()
        ))
    })?;
    let signer = record.signer.clone().ok_or_else(|| {
        invalid(format!(
            "record {} names no signer, so no allowed signer can vouch for it",
            path.display()
        ))
    })?;
    allowed
        .find(&signer, sig.public_key(), NAMESPACE)
        .map_err(|why| {
            invalid(format!(
                "record {} is signed by key {fingerprint} for {signer}, which {} does not allow: {why}\n  fix: if this key is {signer}'s, add `{signer} namespaces=\"{NAMESPACE}\" {}` to the allowed-signers file",
                path.display(),
                allowed.path.display(),
                key.to_openssh().unwrap_or_default()
            ))
        })?;
    let chain = walk_chain(path, &record)?;
    Ok(Verified {
        path: path.to_path_buf(),
        record,
        signer,
        fingerprint,
        chain,
    })
}

/// Follows `previous` links from `record` back to sequence 1.
fn walk_chain(path: &Path, record: &Record) -> Result<Vec<PathBuf>, RecordError> {
    // records/<migration>/<file>.json: links are relative to records/.
    let root = path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let mut chain = Vec::new();
    let mut current = record.clone();
    let mut current_path = path.to_path_buf();
    while let Some(link) = current.previous.clone() {
        let prev_path = root.join(&link.path);
        let bytes = match std::fs::read(&prev_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(invalid(format!(
                    "hash chain broken: {} follows {}, which is missing\n  fix: recover the earlier record from version control",
                    current_path.display(),
                    prev_path.display()
                )));
            }
            Err(source) => return Err(super::io(&prev_path)(source)),
        };
        let sha = crate::digest::sha256_bytes(&bytes);
        if sha != link.sha256 {
            return Err(invalid(format!(
                "hash chain broken: {} changed after {} was written (SHA-256 {sha}, recorded {})\n  fix: the earlier record was edited; recover it from version control",
                prev_path.display(),
                current_path.display(),
                link.sha256
            )));
        }
        let prev: Record = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("{} is not a keel record: {e}", prev_path.display())))?;
        if prev.environment != current.environment || prev.sequence + 1 != current.sequence {
            return Err(invalid(format!(
                "hash chain broken: {} (#{} of {}) does not come right before {} (#{} of {})",
                prev_path.display(),
                prev.sequence,
                prev.environment,
                current_path.display(),
                current.sequence,
                current.environment
            )));
        }
        chain.push(prev_path.clone());
        current = prev;
        current_path = prev_path;
    }
    if current.sequence != 1 {
        return Err(invalid(format!(
            "hash chain broken: {} is record #{} of {} but links to no earlier record",
            current_path.display(),
            current.sequence,
            current.environment
        )));
    }
    Ok(chain)
}
