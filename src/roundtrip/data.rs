//! The rows a round trip starts from and must end with: the project's
//! fixtures (`tests/fixtures/<version>_*.sql`, loaded once that migration
//! is applied), else rows generated from the catalog; and each table's
//! digest (its rows as a multiset, columns by name).

use super::Error;
use crate::db::{Database, Relation, Scope, TableDigest};
use crate::migration::{Migration, Version};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a project keeps its fixtures, relative to the project folder.
pub(crate) const FIXTURES_DIR: &str = "tests/fixtures";

/// Fixture files by the version of the migration whose schema they fill.
#[derive(Debug, Default)]
pub(crate) struct Fixtures {
    by_version: BTreeMap<Version, Vec<PathBuf>>,
}

impl Fixtures {
    /// Reads `dir` (absent: no fixtures). A file whose name does not start
    /// with a migration's version is an error naming it, with the fix.
    pub(crate) fn read(dir: &Path, files: &[Migration]) -> Result<Fixtures, Error> {
        let mut fixtures = Fixtures::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fixtures),
            Err(e) => return Err(e.into()),
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        paths.retain(|p| p.extension().is_some_and(|x| x == "sql"));
        paths.sort();
        for path in paths {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            let version = digits
                .parse::<Version>()
                .ok()
                .filter(|v| files.iter().any(|m| m.version == *v));
            let Some(version) = version else {
                return Err(Error::Fixture(format!(
                    "{}: a fixture's name starts with the version of the migration whose schema it fills\n  fix: rename it `<version>_{name}` after one of the migrations in the folder",
                    path.display()
                )));
            };
            fixtures.by_version.entry(version).or_default().push(path);
        }
        Ok(fixtures)
    }

    /// Loads the fixtures of migration `v`, just applied; returns what it loaded.
    pub(crate) async fn load(
        &self,
        db: &mut dyn Database,
        v: Version,
    ) -> Result<Vec<String>, Error> {
        let mut loaded = Vec::new();
        for path in self.by_version.get(&v).into_iter().flatten() {
            let sql = std::fs::read_to_string(path)?;
            db.execute(&sql).await.map_err(|e| {
                Error::Fixture(format!(
                    "{}: {e}\n  fix: the fixture runs once migration {v} is applied; write it for that schema",
                    path.display()
                ))
            })?;
            loaded.push(format!("fixture {}", path.display()));
        }
        Ok(loaded)
    }
}

/// Fills the tables in `scope` that are still empty (and the empty tables
/// they reference) with `rows` generated rows; one line per table it filled
/// or could not.
pub(crate) async fn generate(
    db: &mut dyn Database,
    rows: u32,
    scope: &Scope,
) -> Result<Vec<String>, Error> {
    Ok(db
        .fill_empty_tables(rows, scope)
        .await?
        .into_iter()
        .filter(|f| f.inserted > 0 || f.note.is_some())
        .map(|f| match f.note {
            Some(note) => format!("{}: {} generated rows; {note}", f.table, f.inserted),
            None => format!("{}: {} generated rows", f.table, f.inserted),
        })
        .collect())
}

/// Each user table's columns (by name) and digest.
pub(crate) type Contents = BTreeMap<String, (Vec<String>, TableDigest)>;

/// What every user table in `scope` holds now, leaving out the `derived`
/// columns of one table (a backfill's).
pub(crate) async fn contents(
    db: &mut dyn Database,
    derived: Option<&(String, Vec<String>)>,
    scope: &Scope,
) -> Result<Contents, Error> {
    // A step reaches a dozen tables of a real history: their columns in one
    // query and their rows checked in one round trip, not three a table.
    let tables = db.tables_in(scope).await?;
    let names = db.column_names(&tables).await?;
    let mut listed = Vec::with_capacity(tables.len());
    for (table, mut columns) in tables.into_iter().zip(names) {
        if let Some((t, skip)) = derived
            && *t == table
        {
            columns.retain(|c| !skip.contains(c));
        }
        columns.sort();
        listed.push((table, columns));
    }
    let asked: Vec<(Relation, Vec<String>)> = listed
        .iter()
        .map(|(t, c)| (Relation::parse(t), c.clone()))
        .collect();
    let mut out = Contents::new();
    for ((table, columns), digest) in listed.into_iter().zip(db.table_digests(&asked).await) {
        out.insert(table, (columns, digest?));
    }
    Ok(out)
}

/// The tables of `before` whose rows differ now, each in words.
pub(crate) async fn changed(db: &mut dyn Database, before: &Contents) -> Vec<String> {
    let asked: Vec<(Relation, Vec<String>)> = before
        .iter()
        .map(|(t, (columns, _))| (Relation::parse(t), columns.clone()))
        .collect();
    let now = db.table_digests(&asked).await;
    let mut out = Vec::new();
    for ((table, (_, digest)), now) in before.iter().zip(now) {
        match now {
            Ok(now) if now == *digest => {}
            Ok(now) if now.rows != digest.rows => out.push(format!(
                "{table} held {} rows before up and holds {} after down",
                digest.rows, now.rows
            )),
            Ok(_) => out.push(format!(
                "{table} holds {} rows as before, but their values differ from before up",
                digest.rows
            )),
            Err(e) => out.push(format!("{table} could not be read after down: {e}")),
        }
    }
    out
}
