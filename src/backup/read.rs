//! Reading an archive back: every CSV against the manifest.

use super::{BackupError, Manifest};
use crate::csv::RecordCounter;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// An archive whose every CSV matched its manifest.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) path: PathBuf,
    pub(crate) manifest: Manifest,
    /// Hex SHA-256 of the archive file.
    pub(crate) sha256: String,
}

pub(super) type Archive = zip::ZipArchive<BufReader<File>>;

/// The most a manifest may be: one entry per table is a few hundred bytes.
const MAX_MANIFEST: u64 = 4 << 20;
/// The most members an archive may have.
const MAX_MEMBERS: usize = 10_000;

/// Opens an archive and reads its manifest, without checking the CSVs.
pub(super) fn open(path: &Path) -> Result<(Archive, Manifest), BackupError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => BackupError::Missing {
            path: path.to_path_buf(),
        },
        _ => BackupError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let corrupt = |detail: String| BackupError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let mut archive = zip::ZipArchive::new(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| corrupt(format!("not a complete zip archive ({e})")))?;
    if archive.len() > MAX_MEMBERS {
        return Err(corrupt(format!(
            "it holds {} files; a keel archive holds one CSV per table and its manifest",
            archive.len()
        )));
    }
    let mut text = Vec::new();
    // Read no more than a manifest can be, whatever the archive claims its
    // size is: a small file may inflate to gigabytes.
    archive
        .by_name("manifest.json")
        .map_err(|_| corrupt("it has no manifest.json".into()))?
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut text)
        .map_err(|e| corrupt(format!("manifest.json: {e}")))?;
    if text.len() as u64 > MAX_MANIFEST {
        return Err(corrupt(format!(
            "manifest.json is larger than {} MiB; a keel manifest lists a few files",
            MAX_MANIFEST >> 20
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| corrupt(format!("manifest.json is not a keel manifest: {e}")))?;
    Ok((archive, manifest))
}

/// Checks an archive: it opens, it has a manifest, the files in it are
/// exactly those the manifest lists, and each CSV has the manifest's header,
/// SHA-256 and row count. Reads every byte once, in constant memory.
pub(crate) fn verify(path: &Path) -> Result<Verified, BackupError> {
    let (mut archive, manifest) = open(path)?;
    let mismatch = |detail: String| BackupError::Mismatch {
        path: path.to_path_buf(),
        detail,
    };
    let mut in_archive: Vec<String> = archive
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| BackupError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("a file name in the archive is unreadable ({e})"),
        })?;
    in_archive.retain(|n| n != "manifest.json");
    in_archive.sort();
    let mut listed: Vec<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
    listed.sort();
    if in_archive != listed {
        return Err(mismatch(format!(
            "the archive holds [{}] but manifest.json lists [{}]",
            in_archive.join(", "),
            listed.join(", ")
        )));
    }
    let mut buf = vec![0u8; 1 << 18];
    for f in &manifest.files {
        let mut entry = archive.by_name(&f.name).map_err(|e| BackupError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("{}: {e}", f.name),
        })?;
        let mut hasher = Sha256::new();
        let mut counter = RecordCounter::default();
        let header = crate::csv::header(&f.columns);
        let mut head = Vec::with_capacity(header.len());
        loop {
            // A CRC mismatch or a cut-off deflate stream surfaces here.
            let n = entry.read(&mut buf).map_err(|e| BackupError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("{}: {e}", f.name),
            })?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            if head.len() < header.len() {
                let take = (header.len() - head.len()).min(n);
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(chunk);
            counter.feed(chunk);
        }
        if head != header {
            return Err(mismatch(format!(
                "{} does not start with the header {}",
                f.name,
                String::from_utf8_lossy(&header).trim_end()
            )));
        }
        let sha = hex::encode(hasher.finalize());
        if sha != f.sha256 {
            return Err(mismatch(format!(
                "{} has SHA-256 {sha}, manifest.json says {}",
                f.name, f.sha256
            )));
        }
        let rows = counter.records().saturating_sub(1);
        if rows != f.rows || counter.unterminated() {
            return Err(mismatch(format!(
                "{} has {rows} rows, manifest.json says {}",
                f.name, f.rows
            )));
        }
    }
    drop(archive);
    let sha256 = crate::digest::sha256_file(path).map_err(|source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Verified {
        path: path.to_path_buf(),
        manifest,
        sha256,
    })
}
