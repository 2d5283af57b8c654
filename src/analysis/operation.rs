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
    /// Certainly not.
    No,
    /// Certainly.
    Yes,
    /// Only if the named condition holds, which the file alone cannot settle.
    Depends(String),
}

impl Tri {
    /// Whether the claim holds for certain.
    pub fn is_yes(&self) -> bool {
        matches!(self, Tri::Yes)
    }
    /// Whether the claim can hold: `Yes` or `Depends`.
    pub fn maybe(&self) -> bool {
        !matches!(self, Tri::No)
    }
    /// `Yes` for `true`, `No` for `false`.
    pub fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
}

/// A lock one action takes on one relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableLock {
    /// The relation locked (a table, index or partition), as keel names it.
    pub table: String,
    /// The lock mode taken on it.
    pub lock: Lock,
}

/// A column as a CREATE TABLE or ADD COLUMN defines it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnDef {
    /// The column's name, unquoted and folded as PostgreSQL would.
    pub name: String,
    /// The declared type; `None` when the definition names none.
    pub ty: Option<SqlType>,
    /// The type as written (names quoted as they were), for a fix that
    /// spells the column again.
    pub ty_sql: Option<String>,
    /// The `DEFAULT` expression as written.
    pub default_sql: Option<String>,
    /// Declared `NOT NULL`, or implied by `PRIMARY KEY`.
    pub not_null: bool,
    /// Declared `PRIMARY KEY` on the column itself.
    pub primary_key: bool,
    /// The `DEFAULT` clause, classified; `None` when there is none.
    pub default: Option<DefaultValue>,
    /// The `GENERATED …` clause, if any.
    pub generated: Option<Generated>,
    /// The table an inline `REFERENCES` points to.
    pub references: Option<String>,
    /// Has an inline `CHECK` constraint.
    pub check: bool,
    /// Has an inline `UNIQUE` constraint.
    pub unique: bool,
    /// 1-based position of the column's name in the file.
    pub line: usize,
    /// 1-based column of the column's name in the file.
    pub column: usize,
}

/// What a column's `DEFAULT` expression means for existing rows when the
/// column is added.
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

/// How a column's value is generated: decides whether ADD COLUMN rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// `GENERATED … AS IDENTITY`: every existing row gets a sequence value (rewrite).
    Identity,
    /// `GENERATED ALWAYS AS (…) STORED`: computed and written for every row (rewrite).
    Stored,
    /// `GENERATED ALWAYS AS (…) VIRTUAL`: computed on read, nothing written.
    Virtual,
}

/// The kind of constraint an `ADD CONSTRAINT` (or table constraint) adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// `FOREIGN KEY … REFERENCES`.
    ForeignKey,
    /// `CHECK (…)`.
    Check,
    /// `UNIQUE`.
    Unique,
    /// `PRIMARY KEY`.
    PrimaryKey,
    /// `EXCLUDE USING …`.
    Exclude,
    /// `NOT NULL` written as a table constraint.
    NotNull,
}

impl ConstraintKind {
    /// The constraint's SQL keywords, for messages and suggested fixes.
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
    /// A function, procedure, routine or aggregate.
    Function,
    /// A view or materialized view.
    View,
    /// A type or domain.
    Type,
    /// A trigger.
    Trigger,
    /// A sequence.
    Sequence,
    /// A schema.
    Schema,
    /// A row security policy, on its table.
    Policy,
    /// A rewrite rule, on its table or view.
    Rule,
    /// An extension.
    Other,
}

/// What one action does. Data the rules need travels with the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// `CREATE TABLE`.
    CreateTable {
        /// The columns it defines.
        columns: Vec<ColumnDef>,
        /// Tables its foreign keys reference, inline or table-level: they are
        /// locked too.
        references: Vec<String>,
        /// `IF NOT EXISTS`: the table may exist already and hold rows, so
        /// it does not count as new for later statements.
        if_not_exists: bool,
        /// `PARTITION BY`: its rows are in its partitions, and an index on
        /// it is built on each of them (never `CONCURRENTLY`).
        partitioned: bool,
    },
    /// `DROP TABLE`, one action per table named; destroys data unless the
    /// table is new.
    DropTable {
        /// `CASCADE`: dependent objects are dropped too.
        cascade: bool,
    },
    /// `ALTER TABLE … RENAME TO`: breaks clients still using the old name.
    RenameTable {
        /// The new name.
        to: String,
    },
    /// `ALTER TABLE … ADD COLUMN`; the rewrite depends on its default and
    /// generation.
    AddColumn(ColumnDef),
    /// `ALTER TABLE … DROP COLUMN`: destroys the column's data.
    DropColumn,
    /// `ALTER TABLE … RENAME COLUMN`: breaks clients still using the old name.
    RenameColumn {
        /// The new name.
        to: String,
    },
    /// `ALTER COLUMN … TYPE`: rewrites unless the change is binary-coercible.
    AlterColumnType {
        /// The new type.
        to: SqlType,
        /// The column's type before, when the schema keel tracks knows it.
        from: Option<SqlType>,
        /// Has a `USING` expression (which forces a rewrite).
        using: bool,
    },
    /// `ALTER COLUMN … SET NOT NULL`: scans the table under ACCESS EXCLUSIVE
    /// unless a validated CHECK proves it.
    SetNotNull,
    /// `ALTER COLUMN … DROP NOT NULL`.
    DropNotNull,
    /// `ALTER COLUMN … SET DEFAULT`: catalog only, affects new rows.
    SetDefault,
    /// `ALTER COLUMN … DROP DEFAULT`.
    DropDefault,
    /// `ALTER TABLE … ADD [CONSTRAINT name] …`.
    AddConstraint {
        /// Which constraint it adds.
        kind: ConstraintKind,
        /// The constraint's name, when written.
        name: Option<String>,
        /// `NOT VALID`: existing rows are not checked now (no scan).
        not_valid: bool,
        /// `USING INDEX`: UNIQUE / PRIMARY KEY built on an existing index (no scan).
        using_index: bool,
        /// The referenced table of a foreign key.
        references: Option<String>,
        /// For `CHECK (c IS NOT NULL)`: the column it proves NOT NULL.
        not_null_check: Option<String>,
    },
    /// `ALTER TABLE … VALIDATE CONSTRAINT`: scans under SHARE UPDATE EXCLUSIVE.
    ValidateConstraint {
        /// The constraint validated.
        name: String,
    },
    /// `ALTER TABLE … DROP CONSTRAINT`.
    DropConstraint {
        /// The constraint dropped.
        name: String,
    },
    /// `CREATE [UNIQUE] INDEX`.
    CreateIndex {
        /// The index name, when written.
        name: Option<String>,
        /// `CONCURRENTLY`: no write lock, but not inside a transaction.
        concurrently: bool,
        /// `UNIQUE`.
        unique: bool,
        /// `IF NOT EXISTS`: on an existing table the index may be there
        /// already.
        if_not_exists: bool,
        /// What follows the table, as written: the method, the columns or
        /// expressions with their operator classes and order, INCLUDE,
        /// WITH and WHERE. With the table and `unique` it is the index
        /// asked for, which keel compares with an index of the same name
        /// that is already there.
        shape: Option<String>,
        /// `ON ONLY table`: on a partitioned table, an index of the parent
        /// alone, built at once and invalid until each partition's index is
        /// attached to it.
        only: bool,
        /// The files made the table partitioned: PostgreSQL refuses
        /// `CONCURRENTLY` on it.
        partitioned: bool,
    },
    /// `DROP INDEX`, one action per index named.
    DropIndex {
        /// The index dropped.
        name: String,
        /// `CONCURRENTLY`: no ACCESS EXCLUSIVE, but not inside a transaction.
        concurrently: bool,
    },
    /// `ALTER INDEX … RENAME TO`.
    RenameIndex,
    /// `REINDEX`.
    Reindex {
        /// `CONCURRENTLY` (12+): does not block writes, but not inside a transaction.
        concurrently: bool,
    },
    /// `ALTER TABLE … DETACH PARTITION`.
    DetachPartition {
        /// The partition detached.
        partition: String,
        /// `CONCURRENTLY` (14+): SHARE UPDATE EXCLUSIVE instead of ACCESS EXCLUSIVE,
        /// but not inside a transaction.
        concurrently: bool,
    },
    /// SET LOGGED/UNLOGGED, SET TABLESPACE, VACUUM FULL, CLUSTER.
    TableRewrite {
        /// The statement or clause, for messages (e.g. `SET LOGGED`).
        what: &'static str,
    },
    /// `TRUNCATE`, one action per table named; destroys data unless the table
    /// is new.
    Truncate {
        /// `CASCADE`: tables referencing it by foreign key are truncated too.
        cascade: bool,
    },
    /// `ALTER TYPE … ADD VALUE`: the new value cannot be used in the same
    /// transaction, and cannot be removed again.
    EnumAddValue {
        /// The value added, as written (a quoted literal).
        value: String,
    },
    /// `ALTER TYPE … RENAME VALUE`: breaks clients using the old label.
    EnumRenameValue,
    /// `UPDATE`: a data change that may lock and touch many rows.
    Update {
        /// Has a `WHERE` clause; without one every row is updated.
        has_where: bool,
        /// The columns its `SET` clause assigns.
        columns: Vec<String>,
    },
    /// `DELETE`: destroys the rows it removes.
    Delete {
        /// Has a `WHERE` clause; without one every row is deleted.
        has_where: bool,
    },
    /// `INSERT`.
    Insert,
    /// `CREATE TRIGGER`: SHARE ROW EXCLUSIVE on its table.
    CreateTrigger {
        /// The trigger's name.
        name: String,
    },
    /// `ALTER TABLE … ENABLE/DISABLE TRIGGER`: SHARE ROW EXCLUSIVE.
    EnableDisableTrigger,
    /// `DROP` of a non-table object (function, view, type, trigger, extension, …).
    DropObject {
        /// Which kind of object.
        object: ObjectKind,
        /// The object's name, as keel names it.
        name: String,
    },
    /// `CREATE` of a non-table object (function, view, type, sequence, extension, …).
    CreateObject {
        /// Which kind of object.
        object: ObjectKind,
        /// The object's name, as keel names it.
        name: String,
    },
    /// BEGIN / COMMIT / ROLLBACK written into the file.
    Transaction {
        /// `true` for BEGIN, `false` for COMMIT / ROLLBACK.
        begin: bool,
    },
    /// VACUUM (not FULL), CREATE DATABASE, ALTER SYSTEM: cannot run in a transaction.
    NonTransactional {
        /// The statement, for messages.
        what: String,
    },
    /// Anything else: no rule applies beyond the locks recorded.
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
    /// What the action does.
    pub kind: ActionKind,
    /// The table acted on (schema-qualified unless `public`), if any.
    pub table: Option<String>,
    /// The column acted on, if any.
    pub column: Option<String>,
    /// Every lock the action takes, on its table and on others (referenced
    /// tables, indexes, partitions).
    pub locks: Vec<TableLock>,
    /// Rewrites the whole table (and its indexes) under its lock.
    pub rewrite: Tri,
    /// Reads every row of the table under its lock (e.g. to check a constraint).
    pub scan: Tri,
    /// Existing data becomes unrecoverable without a backup.
    pub destroys: bool,
    /// PostgreSQL refuses to run it inside a transaction block.
    pub no_transaction: bool,
    /// The table was created earlier in this migration or pending set.
    pub new_table: bool,
    /// `IF NOT EXISTS` on a table or index the files already created (this
    /// migration, or an earlier one of the history lint reads): PostgreSQL
    /// skips the statement after taking its lock, so no rule judges it.
    pub no_op: bool,
    /// The table as the statement names it (its schema only when written),
    /// where the action destroys data: what a backup resolves against the
    /// search path in effect. `table` drops a written `public.`, for matching.
    pub relation: Option<crate::db::Relation>,
    /// The rows an UPDATE or DELETE with a WHERE clause touches.
    pub rows: Option<RowFilter>,
    /// 1-based position of the clause in the file.
    pub line: usize,
    /// 1-based column of the clause in the file.
    pub column_no: usize,
    /// The clause's bytes in the file (`ADD CONSTRAINT … CHECK (…)` of a
    /// longer ALTER TABLE): fixes write that clause made safe. Empty when
    /// unknown.
    pub clause: std::ops::Range<usize>,
}

impl Action {
    /// An action on `table` with no locks, no rewrite or scan, at line 1 column
    /// 1: the classifier fills in the rest.
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
            no_op: false,
            relation: None,
            rows: None,
            clause: 0..0,
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
    /// The statement's text, as written.
    pub sql: String,
    /// Byte offset of the statement's first token in its file: which of
    /// [`Classified::statements`](super::Classified::statements) it is.
    pub offset: usize,
    /// 1-based position of the statement's first token in its file.
    pub line: usize,
    /// 1-based column of the statement's first token.
    pub column: usize,
    /// What the statement does, one action per clause or table.
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
    /// A statement a `DO` block runs (its body's SQL), not one of the file's.
    pub in_do_block: Option<InDoBlock>,
}

/// Where in a `DO` block a statement stands: a DO block is one statement,
/// so everything in it runs in one transaction, loops included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDoBlock {
    /// Runs once.
    Once,
    /// Inside a `LOOP`: run as often as the loop goes round, all in the
    /// DO block's one transaction (a "batched" backfill that is not).
    Loop,
}

/// A defined name as it appears in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenName {
    /// The name's token exactly as written, quotes included.
    pub raw: String,
    /// 1-based line of the name in the file.
    pub line: usize,
    /// 1-based column of the name in the file.
    pub column: usize,
}

impl Operation {
    /// The strongest lock of the statement.
    pub fn lock(&self) -> Option<Lock> {
        self.actions.iter().filter_map(Action::lock).max()
    }

    /// Whether any action rewrites a table: `Yes` beats `Depends` beats `No`.
    pub fn rewrite(&self) -> Tri {
        merge(self.actions.iter().map(|a| &a.rewrite))
    }

    /// Whether any action scans a table: `Yes` beats `Depends` beats `No`.
    pub fn scan(&self) -> Tri {
        merge(self.actions.iter().map(|a| &a.scan))
    }

    /// The last line the statement spans.
    pub fn end_line(&self) -> usize {
        self.line + self.sql.lines().count().saturating_sub(1)
    }

    /// Any action destroys existing data.
    pub fn destroys(&self) -> bool {
        self.actions.iter().any(|a| a.destroys)
    }

    /// Any action refuses to run inside a transaction block.
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
