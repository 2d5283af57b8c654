//! Exporting a [`BackupPlan`] into a zip archive in one streaming pass.

use super::{BackupError, BackupPlan, Manifest, ManifestFile, csv_name, verify};
use crate::csv::RecordCounter;
use crate::db::{Database, ExportQuery};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;

/// A written and verified backup archive.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    pub(crate) path: PathBuf,
    pub(crate) manifest: Manifest,
    /// Hex SHA-256 of the archive file, for runbooks and records.
    pub(crate) sha256: String,
}

/// Deflate level 1: `zip -1`. Backups are written right before a migration,
/// while the operator waits; speed matters more than the last few percent.
const LEVEL: i64 = 1;

/// The options of every archive member: fixed time and mode, so the same
/// data gives the same bytes.
pub(super) fn member_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(LEVEL))
        .last_modified_time(zip::DateTime::DEFAULT)
        .unix_permissions(0o644)
        .large_file(true)
}

/// Exports every table of `plan` into `backups_dir/<migration>/<stamp>.zip`:
/// rows stream from the database through SHA-256, a record counter and
/// deflate straight into the file, so memory stays flat whatever the table
/// size. The archive is then re-read and checked against its manifest before
/// it gets its final name; a failure leaves no archive behind.
pub(crate) async fn create(
    db: &mut dyn Database,
    plan: &BackupPlan,
    backups_dir: &Path,
) -> Result<Created, BackupError> {
    if plan.tables.is_empty() {
        return Err(BackupError::Plan("nothing to back up".into()));
    }
    let dir = backups_dir.join(&plan.migration);
    crate::files::private_ignored_dir(backups_dir)
        .and_then(|()| crate::files::private_dir(&dir))
        .map_err(|source| BackupError::Io {
            path: dir.clone(),
            source,
        })?;
    remove_partials(&dir);
    let created_at = chrono::Utc::now();
    let path = crate::stamp::unique_path(&dir, "", ".zip");
    let partial = crate::stamp::partial(&path);
    let result = write_archive(db, plan, &partial, created_at).await;
    let written = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let checked = match verify(&partial) {
        Ok(v) if v.manifest == written => v,
        Ok(_) => {
            let _ = std::fs::remove_file(&partial);
            return Err(BackupError::Mismatch {
                path: partial,
                detail: "the archive read back differs from what was written".into(),
            });
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &path).map_err(|source| BackupError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Created {
        path,
        manifest: checked.manifest,
        sha256: checked.sha256,
    })
}

/// Archives a killed run left half-written hold user data and are never
/// used: gone before the next one is written (under the run lock, so no
/// other keel is writing one).
fn remove_partials(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(".zip.partial") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

async fn write_archive(
    db: &mut dyn Database,
    plan: &BackupPlan,
    path: &Path,
    created_at: chrono::DateTime<chrono::Utc>,
) -> Result<Manifest, BackupError> {
    let io = |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = crate::files::create_private(path).map_err(io)?;
    let zip = Compressor::spawn(file);
    let result = export_all(db, plan, created_at, &zip).await;
    // The compressor's own error (disk full…) explains a failed send better
    // than the send does.
    match (result, zip.finish()) {
        (_, Err(e)) => Err(io(e)),
        (Err(e), Ok(_)) => Err(e),
        (Ok(manifest), Ok(file)) => {
            file.sync_all().map_err(io)?;
            Ok(manifest)
        }
    }
}

async fn export_all(
    db: &mut dyn Database,
    plan: &BackupPlan,
    created_at: chrono::DateTime<chrono::Utc>,
    zip: &Compressor,
) -> Result<Manifest, BackupError> {
    let io = |source| BackupError::Io {
        path: PathBuf::from(&plan.migration),
        source,
    };
    let mut files: Vec<ManifestFile> = Vec::new();
    for t in &plan.tables {
        let columns = columns_of(db, t).await?;
        let taken: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
        let name = csv_name(&t.table.shown(), &taken);
        zip.send(Chunk::Start(name.clone())).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut counter = RecordCounter::default();
        let mut sink = |chunk: &[u8]| -> std::io::Result<()> {
            hasher.update(chunk);
            counter.feed(chunk);
            zip.send(Chunk::Data(chunk.to_vec()))
        };
        let query = ExportQuery {
            table: t.table.clone(),
            alias: t.rows.as_ref().and_then(|r| r.alias.clone()),
            columns: columns.clone(),
            filter: t.rows.as_ref().map(|r| r.condition.clone()),
            search_path: t.rows.as_ref().and_then(|r| r.search_path.clone()),
        };
        db.export_csv(&query, &mut sink)
            .await
            .map_err(|source| BackupError::Db {
                context: format!("exporting {} for the backup", t.table),
                source: Box::new(source),
            })?;
        files.push(ManifestFile {
            name,
            table: t.table.name.clone(),
            schema: t.table.schema.clone(),
            columns,
            kind: t.kind,
            key: t.key.clone(),
            rows_where: t.rows.as_ref().map(|r| r.shown.clone()),
            destroyed: t.destroyed.clone(),
            // The header line is not a row.
            rows: counter.records().saturating_sub(1),
            sha256: hex::encode(hasher.finalize()),
        });
    }
    let manifest = Manifest {
        migration: plan.migration.clone(),
        checksum: plan.checksum.clone(),
        created_at,
        keel_version: env!("CARGO_PKG_VERSION").to_string(),
        environment: plan.target.environment.clone(),
        database: plan.target.database.clone(),
        database_id: plan.target.database_id.clone(),
        server: plan.target.server.clone(),
        files,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| io(e.into()))?;
    json.push(b'\n');
    zip.send(Chunk::Start("manifest.json".into())).map_err(io)?;
    zip.send(Chunk::Data(json)).map_err(io)?;
    Ok(manifest)
}

enum Chunk {
    /// Begin the next archive member.
    Start(String),
    Data(Vec<u8>),
}

/// Deflate and file writes on their own thread, so that compression runs
/// while the next rows arrive from the database. A short bounded queue keeps
/// memory flat: when the disk or deflate is slower, the export waits.
struct Compressor {
    tx: Option<std::sync::mpsc::SyncSender<Chunk>>,
    handle: Option<std::thread::JoinHandle<std::io::Result<File>>>,
}

impl Compressor {
    fn spawn(file: File) -> Compressor {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(8);
        let handle = std::thread::spawn(move || -> std::io::Result<File> {
            let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
            for chunk in rx {
                match chunk {
                    Chunk::Start(name) => zip.start_file(name, member_options())?,
                    Chunk::Data(bytes) => zip.write_all(&bytes)?,
                }
            }
            let out = zip.finish()?;
            out.into_inner().map_err(|e| e.into_error())
        });
        Compressor {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    fn send(&self, chunk: Chunk) -> std::io::Result<()> {
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(chunk).ok())
            .ok_or_else(|| std::io::Error::other("the archive writer stopped"))
    }

    /// Closes the archive and returns the file, or the writer's error.
    fn finish(mut self) -> std::io::Result<File> {
        drop(self.tx.take());
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(result)) => result,
            _ => Err(std::io::Error::other("the archive writer panicked")),
        }
    }
}

/// The CSV's columns: key then captured columns, or every column of the
/// table but the generated ones (the database computes those again).
async fn columns_of(
    db: &mut dyn Database,
    t: &super::TableBackup,
) -> Result<Vec<String>, BackupError> {
    let dbe = |source| BackupError::Db {
        context: format!("reading the columns of {}", t.table),
        source: Box::new(source),
    };
    match &t.columns {
        Some(cols) => {
            if t.key.is_empty() {
                return Err(BackupError::Plan(format!(
                    "a column backup of {} needs the key columns that identify its rows",
                    t.table
                )));
            }
            let mut all = t.key.clone();
            all.extend(cols.iter().filter(|c| !t.key.contains(c)).cloned());
            Ok(all)
        }
        None => {
            let generated = db.generated_columns(&t.table).await.map_err(dbe)?;
            let cols: Vec<String> = db
                .columns(&t.table.to_string())
                .await
                .map_err(dbe)?
                .into_iter()
                .map(|c| c.name)
                .filter(|c| !generated.contains(c))
                .collect();
            if cols.is_empty() {
                return Err(BackupError::Plan(format!(
                    "table {} does not exist or has no columns",
                    t.table
                )));
            }
            Ok(cols)
        }
    }
}
