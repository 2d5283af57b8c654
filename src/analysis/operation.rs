//! The operation model: what one statement does to the database, decided
//! once by [`classify`](super::classify) and read by every consumer (lint
//! rules, dry run, plan, reversibility, backup planning).

pub use super::lock::Lock;
use super::sqltype::SqlType;
use serde::Serialize;

/// A claim that can depend on things a file cannot show (the column's
/// current type, the session TimeZone); `Depends` says on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tri {
    No,
    Yes,
    Depends(String),
}

impl Tri {
    pub fn is_yes(&self) -> bool {
        matches!(self, Tri::Yes)
    }
    pub fn maybe(&self) -> bool {
        !matches!(self, Tri::No)
    }
    pub fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
}

/// A lock one action takes on one relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableLock {
    pub table: String,
    pub lock: Lock,
}

/// A column as a CREATE TABLE or ADD COLUMN defines it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnDef {
    pub name: String,
    pub ty: Option<SqlType>,
    pub not_null: bool,
    pub primary_key: bool,
    pub default: Option<DefaultValue>,
    pub generated: Option<Generated>,
    pub references: Option<String>,
    pub check: bool,
    pub unique: bool,
    /// 1-based position of the column's name in the file.
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultValue {
    /// A literal, a constant expression or a stable function like `now()`:
    /// stored once in the catalog (PostgreSQL 11+), no rewrite.
    Constant,
    /// NULL written out: the same as no default.
    Null,
    /// Evaluated per row (`random()`, `gen_random_uuid()`, `clock_timestamp()`):
    /// every existing row gets its own value, so the table is rewritten.
    Volatile(String),
    /// A function keel does not know: volatile unless declared otherwise
    /// (CREATE FUNCTION's default), so whether it rewrites depends on it.
    Unknown(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    Identity,
    Stored,
    Virtual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    ForeignKey,
    Check,
    Unique,
    PrimaryKey,
    Exclude,
    NotNull,
}

impl ConstraintKind {
    pub fn sql(self) -> &'static str {
        match self {
            ConstraintKind::ForeignKey => "FOREIGN KEY",
            ConstraintKind::Check => "CHECK",
            ConstraintKind::Unique => "UNIQUE",
            ConstraintKind::PrimaryKey => "PRIMARY KEY",
            ConstraintKind::Exclude => "EXCLUDE",
            ConstraintKind::NotNull => "NOT NULL",
        }
    }
}

/// Which object a DROP removes, for `drop-dependency` and the down policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Function,
    View,
    Type,
    Trigger,
    Sequence,
    Schema,
    Other,
}

/// What one action does. Data the rules need travels with the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    CreateTable {
        columns: Vec<ColumnDef>,
        references: Vec<String>,
        /// `IF NOT EXISTS`: the table may exist already and hold rows, so
        /// it does not count as new for later statements.
        if_not_exists: bool,
    },
    DropTable {
        cascade: bool,
    },
    RenameTable {
        to: String,
    },
    AddColumn(ColumnDef),
    DropColumn,
    RenameColumn {
        to: String,
    },
    AlterColumnType {
        to: SqlType,
        from: Option<SqlType>,
        using: bool,
    },
    SetNotNull,
    DropNotNull,
    SetDefault,
    DropDefault,
    AddConstraint {
        kind: ConstraintKind,
        name: Option<String>,
        not_valid: bool,
        using_index: bool,
        /// The referenced table of a foreign key.
        references: Option<String>,
        /// For `CHECK (c IS NOT NULL)`: the column it proves NOT NULL.
        not_null_check: Option<String>,
    },
    ValidateConstraint {
        name: String,
    },
    DropConstraint {
        name: String,
    },
    CreateIndex {
        name: Option<String>,
        concurrently: bool,
        unique: bool,
        /// `IF NOT EXISTS`: on an existing table the index may be there
        /// already.
        if_not_exists: bool,
    },
    DropIndex {
        name: String,
        concurrently: bool,
    },
    RenameIndex,
    Reindex {
        concurrently: bool,
    },
    DetachPartition {
        partition: String,
        concurrently: bool,
    },
    /// SET LOGGED/UNLOGGED, SET TABLESPACE, VACUUM FULL, CLUSTER.
    TableRewrite {
        what: &'static str,
    },
    Truncate {
        cascade: bool,
    },
    EnumAddValue {
        value: String,
    },
    EnumRenameValue,
    Update {
        has_where: bool,
        columns: Vec<String>,
    },
    Delete {
        has_where: bool,
    },
    Insert,
    CreateTrigger {
        name: String,
    },
    EnableDisableTrigger,
    DropObject {
        object: ObjectKind,
        name: String,
    },
    CreateObject {
        object: ObjectKind,
        name: String,
    },
    /// BEGIN / COMMIT / ROLLBACK written into the file.
    Transaction {
        begin: bool,
    },
    /// VACUUM (not FULL), CREATE DATABASE, ALTER SYSTEM: cannot run in a transaction.
    NonTransactional {
        what: String,
    },
    Other,
}

/// Which rows an `UPDATE … [FROM …] WHERE …` or `DELETE … [USING …] WHERE …`
/// touches, as written: enough to select exactly those rows before it runs
/// (`SELECT … FROM table [AS alias] WHERE EXISTS (SELECT 1 FROM from WHERE
/// predicate)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowFilter {
    /// The target table's alias, when the statement gives one.
    pub alias: Option<String>,
    /// The FROM (UPDATE) or USING (DELETE) list, without the keyword.
    pub from: Option<String>,
    /// The WHERE clause's condition.
    pub predicate: String,
}

/// One thing a statement does: an ALTER TABLE with three clauses has three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub kind: ActionKind,
    /// The table acted on (schema-qualified unless `public`), if any.
    pub table: Option<String>,
    pub column: Option<String>,
    pub locks: Vec<TableLock>,
    pub rewrite: Tri,
    pub scan: Tri,
    /// Existing data becomes unrecoverable without a backup.
    pub destroys: bool,
    /// PostgreSQL refuses to run it inside a transaction block.
    pub no_transaction: bool,
    /// The table was created earlier in this migration or pending set.
    pub new_table: bool,
    /// The table as the statement names it (its schema only when written),
    /// where the action destroys data: what a backup resolves against the
    /// search path in effect. `table` drops a written `public.`, for matching.
    pub relation: Option<crate::db::Relation>,
    /// The rows an UPDATE or DELETE with a WHERE clause touches.
    pub rows: Option<RowFilter>,
    /// 1-based position of the clause in the file.
    pub line: usize,
    pub column_no: usize,
}

impl Action {
    pub fn new(kind: ActionKind, table: Option<String>) -> Action {
        Action {
            kind,
            table,
            column: None,
            locks: Vec::new(),
            rewrite: Tri::No,
            scan: Tri::No,
            destroys: false,
            no_transaction: false,
            new_table: false,
            relation: None,
            rows: None,
            line: 1,
            column_no: 1,
        }
    }

    /// The strongest lock this action takes on any relation.
    pub fn lock(&self) -> Option<Lock> {
        self.locks.iter().map(|l| l.lock).max()
    }

    /// The table and column as `table.column`, for messages.
    pub fn target(&self) -> String {
        match (&self.table, &self.column) {
            (Some(t), Some(c)) => format!("{t}.{c}"),
            (Some(t), None) => t.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => "?".into(),
        }
    }

    /// An existing table: rules about locking live tables apply.
    pub fn on_existing_table(&self) -> bool {
        self.table.is_some() && !self.new_table
    }
}

/// One statement, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Short statement kind, e.g. `ALTER TABLE`, `CREATE INDEX`.
    pub kind: String,
    pub sql: String,
    /// Byte offset of the statement's first token in its file: which of
    /// [`Classified::statements`](super::Classified::statements) it is.
    pub offset: usize,
    /// 1-based position of the statement's first token in its file.
    pub line: usize,
    pub column: usize,
    pub actions: Vec<Action>,
    /// Runs inside a transaction: the migration's own, or a BEGIN in the file.
    pub in_transaction: bool,
    /// `keel:allow` comments directly above the statement.
    pub allows: Vec<super::allow::Allow>,
    /// Names this statement defines, as written (for `quote-identifier`).
    pub names: Vec<WrittenName>,
    /// The search path an earlier statement of the file set, in effect for
    /// this one; `None`: the session's own.
    pub search_path: Option<super::search_path::SearchPath>,
}

/// A defined name as it appears in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenName {
    pub raw: String,
    pub line: usize,
    pub column: usize,
}

impl Operation {
    /// The strongest lock of the statement.
    pub fn lock(&self) -> Option<Lock> {
        self.actions.iter().filter_map(Action::lock).max()
    }

    pub fn rewrite(&self) -> Tri {
        merge(self.actions.iter().map(|a| &a.rewrite))
    }

    pub fn scan(&self) -> Tri {
        merge(self.actions.iter().map(|a| &a.scan))
    }

    /// The last line the statement spans.
    pub fn end_line(&self) -> usize {
        self.line + self.sql.lines().count().saturating_sub(1)
    }

    pub fn destroys(&self) -> bool {
        self.actions.iter().any(|a| a.destroys)
    }

    pub fn no_transaction(&self) -> bool {
        self.actions.iter().any(|a| a.no_transaction)
    }

    /// Every table the statement locks, in order of first mention.
    pub fn tables(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.actions {
            for t in a.table.iter().chain(a.locks.iter().map(|l| &l.table)) {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
        }
        out
    }
}

fn merge<'a>(it: impl Iterator<Item = &'a Tri>) -> Tri {
    let mut out = Tri::No;
    for t in it {
        match t {
            Tri::Yes => return Tri::Yes,
            Tri::Depends(_) if out == Tri::No => out = t.clone(),
            _ => {}
        }
    }
    out
}
