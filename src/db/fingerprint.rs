//! STUB (replaced by branch fp13).
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    objects: BTreeMap<String, String>,
}

impl Fingerprint {
    pub fn insert(&mut self, key: impl Into<String>, line: impl Into<String>) {
        self.objects.insert(key.into(), line.into());
    }
    pub fn len(&self) -> usize {
        self.objects.len()
    }
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
    pub fn diff(&self, after: &Fingerprint) -> SchemaDiff {
        let mut changes = Vec::new();
        for (k, v) in &self.objects {
            match after.objects.get(k) {
                None => changes.push(SchemaChange::Removed { key: k.clone(), line: v.clone() }),
                Some(a) if a != v => changes.push(SchemaChange::Changed { key: k.clone(), before: v.clone(), after: a.clone() }),
                _ => {}
            }
        }
        for (k, v) in &after.objects {
            if !self.objects.contains_key(k) {
                changes.push(SchemaChange::Added { key: k.clone(), line: v.clone() });
            }
        }
        SchemaDiff { changes }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchemaDiff {
    pub changes: Vec<SchemaChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaChange {
    Removed { key: String, line: String },
    Added { key: String, line: String },
    Changed { key: String, before: String, after: String },
}

impl SchemaDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl std::fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in &self.changes {
            match c {
                SchemaChange::Removed { line, .. } => writeln!(f, "- {line}")?,
                SchemaChange::Added { line, .. } => writeln!(f, "+ {line}")?,
                SchemaChange::Changed { before, after, .. } => writeln!(f, "- {before}\n+ {after}")?,
            }
        }
        Ok(())
    }
}
