//! What the files themselves say about the schema, statement by statement:
//! which tables are new (created earlier in this migration or pending set),
//! the column types they declared, which indexes belong to which table, and
//! which CHECK constraints prove a column NOT NULL. Classification reads it
//! before each statement and applies the statement afterwards.

use super::live::LiveSchema;
use super::operation::{ActionKind, ColumnDef, ConstraintKind, Operation};
use super::sqltype::SqlType;
use super::version::PgVersion;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The schema as the files so far leave it, with the server's facts in live
/// mode: what classification consults to tell new tables from live ones.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The PostgreSQL version the rules assume (locks and rewrites differ by
    /// version); `None`: unknown.
    pub version: Option<PgVersion>,
    /// What the server says about existing tables (live mode), read where
    /// the files are silent.
    pub live: Option<Arc<LiveSchema>>,
    /// Boxed: the map's slots stay small (a run of thousands of pending
    /// migrations keeps one table each, and growing the map holds two
    /// tables of slots at once).
    tables: HashMap<String, Box<Table>>,
    indexes: HashMap<String, String>,
    /// Which migration of the pending set is being read (see
    /// [`Schema::begin_migration`]).
    migration: u32,
}

/// The pseudo-constraint name for a column that is NOT NULL already: a
/// second SET NOT NULL finds nothing to check.
fn attnotnull(column: &str) -> String {
    format!("{column} NOT NULL")
}

#[derive(Debug, Clone, Default)]
struct Table {
    new: bool,
    /// A CREATE TABLE of the files made it (not only seen altered).
    created: bool,
    /// Created with PARTITION BY.
    partitioned: bool,
    /// The migration of the set that created it.
    born: u32,
    columns: Named<Column>,
    /// CHECK constraints of the form `c IS NOT NULL`: name → (column, validated).
    not_null_checks: Named<(String, bool)>,
}

/// Values by name, in a list, not a map: a table has a few columns and
/// fewer NOT NULL proofs, and a run of thousands of migrations keeps one
/// table each (an empty map is twice the size of an empty list).
#[derive(Debug, Clone)]
struct Named<V>(Vec<(String, V)>);

impl<V> Default for Named<V> {
    fn default() -> Self {
        Named(Vec::new())
    }
}

impl<V> Named<V> {
    fn get(&self, name: &str) -> Option<&V> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.0.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn insert(&mut self, name: String, value: V) {
        self.remove(&name);
        self.0.push((name, value));
    }

    fn remove(&mut self, name: &str) -> Option<V> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(i).1)
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.0.iter_mut().map(|(_, v)| v)
    }
}

impl<V: Default> Named<V> {
    fn entry(&mut self, name: &str) -> &mut V {
        let i = match self.0.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.0.push((name.to_string(), V::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }
}

impl<V> FromIterator<(String, V)> for Named<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Named<V> {
        let mut v: Vec<(String, V)> = iter.into_iter().collect();
        v.shrink_to_fit();
        Named(v)
    }
}

#[derive(Debug, Clone, Default)]
struct Column {
    ty: Option<SqlType>,
    new: bool,
    born: u32,
}

impl Schema {
    /// An empty schema for a server of `version`.
    pub fn new(version: Option<PgVersion>) -> Schema {
        Schema {
            version,
            ..Schema::default()
        }
    }

    /// A schema that reads the live one where the files say nothing.
    pub fn with_live(version: Option<PgVersion>, live: Option<Arc<LiveSchema>>) -> Schema {
        Schema {
            version,
            live,
            ..Schema::default()
        }
    }

    /// The session TimeZone is UTC (live mode only).
    pub fn timezone_is_utc(&self) -> Option<bool> {
        self.live.as_ref()?.timezone_is_utc()
    }

    /// `pg_proc.provolatile` of a function (live mode only).
    pub fn volatility(&self, function: &str) -> Option<char> {
        self.live.as_ref()?.volatility(function)
    }

    /// An existing table's entry as the server knows it: its NOT NULL
    /// proofs (valid CHECKs and columns NOT NULL already).
    fn seeded(&self, name: &str) -> Table {
        let mut t = Table::default();
        if let Some(live) = self.live.as_ref().and_then(|l| l.table(name)) {
            for c in &live.not_null_checks {
                t.not_null_checks
                    .insert(c.name.clone(), (c.column.clone(), c.valid));
            }
            for (col, ty) in live.columns.iter().filter(|(_, ty)| ty.not_null) {
                t.not_null_checks
                    .insert(attnotnull(col), (col.clone(), ty.not_null));
            }
        }
        t
    }

    /// The schema as down.sql sees it: everything the up created exists
    /// now and may hold data, so nothing counts as new.
    pub fn after_up(&self) -> Schema {
        self.after_up_of(None)
    }

    /// [`Schema::after_up`] holding only the tables `ops` (the up's) name,
    /// and the indexes on them: a down.sql touches what its up touched, and
    /// any other table reads as existing, as after the up. Copying the
    /// whole schema of a pending set for every migration's down made
    /// analysing N pending migrations take N² time.
    pub fn after_up_for(&self, ops: &[Operation]) -> Schema {
        let named: HashSet<&str> = ops
            .iter()
            .flat_map(|o| &o.actions)
            .filter_map(|a| a.table.as_deref())
            .collect();
        self.after_up_of(Some(&named))
    }

    fn after_up_of(&self, only: Option<&HashSet<&str>>) -> Schema {
        let keep = |table: &str| only.is_none_or(|o| o.contains(table));
        let mut s = Schema {
            version: self.version,
            live: self.live.clone(),
            tables: match only {
                None => self.tables.clone(),
                Some(names) => names
                    .iter()
                    .filter_map(|n| Some((n.to_string(), self.tables.get(*n)?.clone())))
                    .collect(),
            },
            indexes: self
                .indexes
                .iter()
                .filter(|(_, table)| keep(table))
                .map(|(i, t)| (i.clone(), t.clone()))
                .collect(),
            migration: self.migration,
        };
        for t in s.tables.values_mut() {
            t.new = false;
            t.columns.values_mut().for_each(|c| c.new = false);
        }
        s
    }

    /// A table a CREATE TABLE in the files made (earlier in this migration,
    /// or in the history lint reads), and no DROP since.
    pub fn created_table(&self, table: &str) -> bool {
        self.tables.get(table).is_some_and(|t| t.created)
    }

    /// Created with PARTITION BY by the files.
    pub fn is_partitioned(&self, table: &str) -> bool {
        self.tables.get(table).is_some_and(|t| t.partitioned)
    }

    /// Created earlier in this migration or pending set: it holds no rows yet,
    /// so locking and rewriting it is harmless.
    pub fn is_new_table(&self, table: &str) -> bool {
        self.tables.get(table).is_some_and(|t| t.new)
    }

    /// The next migration of a pending set begins: what the earlier ones
    /// created is new to the lint rules (it has no readers yet), but may
    /// hold their rows, so dropping it destroys data a backup must keep.
    pub fn begin_migration(&mut self) {
        self.migration += 1;
    }

    /// Created earlier in the migration being read: it holds no data
    /// that was there before the migration.
    pub fn is_new_table_here(&self, table: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|t| t.new && t.born == self.migration)
    }

    /// A column added earlier in the migration being read.
    pub fn is_new_column_here(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(table)
            .and_then(|t| t.columns.get(column))
            .is_some_and(|c| c.new && c.born == self.migration)
    }

    /// A column added earlier in the set (on a new or an existing table).
    pub fn is_new_column(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(table)
            .and_then(|t| t.columns.get(column))
            .is_some_and(|c| c.new)
    }

    /// The column's type: as the files declared or changed it, else (on an
    /// existing table) as the server has it.
    pub fn column_type(&self, table: &str, column: &str) -> Option<&SqlType> {
        if let Some(t) = self.tables.get(table) {
            if let Some(ty) = t.columns.get(column).and_then(|c| c.ty.as_ref()) {
                return Some(ty);
            }
            if t.new {
                return None;
            }
        }
        Some(&self.live.as_ref()?.column(table, column)?.ty)
    }

    /// The table an index the files created belongs to.
    pub fn index_table(&self, index: &str) -> Option<&str> {
        self.indexes.get(index).map(String::as_str)
    }

    /// PostgreSQL 12+ skips SET NOT NULL's scan when a valid CHECK proves it.
    pub fn proves_not_null(&self, table: &str, column: &str) -> bool {
        let seeded;
        let t = match self.tables.get(table) {
            Some(t) => t,
            None => {
                seeded = self.seeded(table);
                &seeded
            }
        };
        t.not_null_checks
            .values()
            .any(|(c, valid)| c == column && *valid)
    }

    /// Records what a classified statement did.
    pub fn apply(&mut self, op: &Operation) {
        for a in &op.actions {
            // Whether or not its table is known: `DROP INDEX i; CREATE INDEX
            // IF NOT EXISTS i …` builds i again.
            if let ActionKind::DropIndex { name, .. } = &a.kind {
                self.indexes.remove(name);
                continue;
            }
            let Some(table) = a.table.clone() else {
                continue;
            };
            match &a.kind {
                ActionKind::CreateTable {
                    columns,
                    if_not_exists,
                    partitioned,
                    ..
                } => self.create_table(table, columns, (*if_not_exists, *partitioned)),
                ActionKind::DropTable { .. } => {
                    self.tables.remove(&table);
                    self.indexes.retain(|_, t| *t != table);
                }
                ActionKind::RenameTable { to } => {
                    if let Some(t) = self.tables.remove(&table) {
                        self.tables.insert(to.clone(), t);
                    }
                    for t in self.indexes.values_mut().filter(|t| **t == table) {
                        *t = to.clone();
                    }
                }
                ActionKind::AddColumn(def) => {
                    let col = Column {
                        ty: def.ty.clone(),
                        new: true,
                        born: self.migration,
                    };
                    self.table(&table).columns.insert(def.name.clone(), col);
                }
                ActionKind::DropColumn => {
                    if let Some(c) = &a.column {
                        self.table(&table).columns.remove(c);
                    }
                }
                ActionKind::RenameColumn { to } => {
                    if let Some(c) = &a.column {
                        let live = Column {
                            ty: self.column_type(&table, c).cloned(),
                            ..Column::default()
                        };
                        let t = self.table(&table);
                        let col = t.columns.remove(c).unwrap_or(live);
                        t.columns.insert(to.clone(), col);
                    }
                }
                ActionKind::SetNotNull => {
                    if let Some(c) = &a.column {
                        let t = self.table(&table);
                        t.not_null_checks.insert(attnotnull(c), (c.clone(), true));
                    }
                }
                ActionKind::DropNotNull => {
                    if let Some(c) = &a.column {
                        self.table(&table).not_null_checks.remove(&attnotnull(c));
                    }
                }
                ActionKind::AlterColumnType { to, .. } => {
                    if let Some(c) = &a.column {
                        let t = self.table(&table);
                        t.columns.entry(c).ty = Some(to.clone());
                    }
                }
                ActionKind::AddConstraint {
                    kind: ConstraintKind::Check,
                    name: Some(name),
                    not_valid,
                    not_null_check: Some(column),
                    ..
                } => {
                    let t = self.table(&table);
                    t.not_null_checks
                        .insert(name.clone(), (column.clone(), !not_valid));
                }
                ActionKind::ValidateConstraint { name } => {
                    if let Some(check) = self.table(&table).not_null_checks.get_mut(name) {
                        check.1 = true;
                    }
                }
                ActionKind::DropConstraint { name } => {
                    self.table(&table).not_null_checks.remove(name);
                }
                ActionKind::CreateIndex {
                    name: Some(name), ..
                } => {
                    self.indexes.insert(name.clone(), table);
                }
                _ => {}
            }
        }
    }

    fn create_table(
        &mut self,
        table: String,
        columns: &[ColumnDef],
        (if_not_exists, partitioned): (bool, bool),
    ) {
        // IF NOT EXISTS may find the table there already, with
        // rows: it stays an existing table, and one the files
        // know already stays as they left it.
        if if_not_exists && self.tables.contains_key(&table) {
            return;
        }
        let new = !if_not_exists;
        // The server's columns win over the ones a skipped
        // CREATE would have made.
        let live = self.live.as_ref().and_then(|l| l.table(&table));
        let columns = columns
            .iter()
            .filter(|_| new || live.is_none())
            .map(|c| {
                let col = Column {
                    ty: c.ty.clone(),
                    new,
                    born: self.migration,
                };
                (c.name.clone(), col)
            })
            .collect();
        let t = Table {
            new,
            created: true,
            partitioned,
            born: self.migration,
            columns,
            ..if new {
                Table::default()
            } else {
                self.seeded(&table)
            }
        };
        self.tables.insert(table, Box::new(t));
    }

    fn table(&mut self, name: &str) -> &mut Table {
        if !self.tables.contains_key(name) {
            let seeded = self.seeded(name);
            self.tables.insert(name.to_string(), Box::new(seeded));
        }
        self.tables.get_mut(name).expect("inserted above")
    }
}

/// What an up.sql created or renamed: its down.sql is expected to drop or
/// rename exactly these, so the down policy does not flag them.
#[derive(Debug, Clone, Default)]
pub struct Created {
    /// Tables created, and the new names of tables renamed.
    pub tables: HashSet<String>,
    /// Columns added, and the new names of columns renamed, as (table, column).
    pub columns: HashSet<(String, String)>,
    /// Indexes created (with a name).
    pub indexes: HashSet<String>,
    /// Constraints added by name.
    pub constraints: HashSet<String>,
    /// Other objects created: functions, views, types, sequences, triggers, …
    pub objects: HashSet<String>,
    /// Columns whose NOT NULL, default or type the up changed: the down
    /// may change them back.
    pub altered: HashSet<(String, String)>,
    /// Tables the up wrote rows to: the down may delete them again.
    pub updated: HashSet<String>,
    /// Indexes built with IF NOT EXISTS on an existing table: they may have
    /// been there before the migration, so dropping one in the same file
    /// is no undo.
    pub reused_indexes: HashSet<String>,
    /// Indexes the up dropped: the down may build them again.
    pub dropped_indexes: HashSet<String>,
}

impl Created {
    /// Collects what the up's classified statements create, rename, alter or drop.
    pub fn from_ops(ops: &[Operation]) -> Created {
        let mut c = Created::default();
        for a in ops.iter().flat_map(|o| &o.actions) {
            let table = a.table.clone().unwrap_or_default();
            match &a.kind {
                ActionKind::CreateTable { .. } => {
                    c.tables.insert(table);
                }
                ActionKind::RenameTable { to } => {
                    c.tables.insert(to.clone());
                }
                ActionKind::AddColumn(def) => {
                    c.columns.insert((table, def.name.clone()));
                }
                ActionKind::RenameColumn { to } => {
                    c.columns.insert((table, to.clone()));
                }
                ActionKind::AddConstraint { name, .. } => {
                    c.constraints.extend(name.clone());
                }
                ActionKind::CreateIndex {
                    name,
                    if_not_exists,
                    ..
                } => {
                    c.indexes.extend(name.clone());
                    if *if_not_exists && a.on_existing_table() {
                        c.reused_indexes.extend(name.clone());
                    }
                }
                ActionKind::CreateObject { name, .. } => {
                    c.objects.insert(name.clone());
                }
                ActionKind::CreateTrigger { name } => {
                    c.objects.insert(name.clone());
                }
                ActionKind::DropIndex { name, .. } => {
                    c.dropped_indexes.insert(name.clone());
                }
                ActionKind::SetNotNull
                | ActionKind::SetDefault
                | ActionKind::DropNotNull
                | ActionKind::DropDefault
                | ActionKind::AlterColumnType { .. } => {
                    c.altered
                        .insert((table, a.column.clone().unwrap_or_default()));
                }
                ActionKind::Update { .. } | ActionKind::Delete { .. } | ActionKind::Insert => {
                    c.updated.insert(table);
                }
                _ => {}
            }
        }
        c
    }
}
