//! Which objects a catalog read covers. A migration reaches the tables its
//! statements name; reading only those (and what depends on them) keeps
//! `keel test` and each run's live facts from growing with the size of the
//! whole schema.

use std::collections::BTreeSet;

/// Every object, or the relations with one of these names in any schema (a
/// superset when two schemas hold the same name, never less) and, when
/// `others`, every object that is not a relation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Everything: what a statement keel cannot follow (a DO block, a
    /// function call, a DROP … CASCADE of a type) may have changed.
    #[default]
    All,
    /// Relations by bare name (`pg_class.relname`, SQLite's table name).
    Named {
        /// The relations' names: each of their objects is covered.
        relations: BTreeSet<String>,
        /// Relations of which only the foreign keys are covered in the
        /// schema (their rows are, as named relations' are): the tables
        /// that point at one of `relations`, whose keys a statement on it
        /// can drop or rewrite. Never one of `relations`.
        keys_only: BTreeSet<String>,
        /// Schemas, types, functions and extensions too: a statement
        /// creates, alters or drops one of them.
        others: bool,
        /// Functions whose volatility the analysis asks, by bare name:
        /// those an added column's DEFAULT calls.
        functions: BTreeSet<String>,
    },
}

impl Scope {
    /// Nothing yet; [`Scope::add`] names relations.
    pub fn none() -> Scope {
        Scope::Named {
            relations: BTreeSet::new(),
            keys_only: BTreeSet::new(),
            others: false,
            functions: BTreeSet::new(),
        }
    }

    /// Adds the relation keel writes as `name` (`schema.table` or `table`,
    /// quoted or not).
    pub fn add(&mut self, name: &str) {
        let name = crate::db::Relation::parse(name).name;
        // An unquoted name the classifier kept in its written case is
        // folded by the server: cover both.
        self.add_relname(&name.to_lowercase());
        self.add_relname(&name);
    }

    /// Adds a relation by its name in the catalog, as it is.
    pub fn add_relname(&mut self, relname: &str) {
        if let Scope::Named {
            relations,
            keys_only,
            ..
        } = self
        {
            keys_only.remove(relname);
            relations.insert(relname.to_string());
        }
    }

    /// Adds a relation by its name in the catalog, of which only the
    /// foreign keys are compared (unless it is covered whole).
    pub fn add_keys_only(&mut self, relname: &str) {
        if let Scope::Named {
            relations,
            keys_only,
            ..
        } = self
            && !relations.contains(relname)
        {
            keys_only.insert(relname.to_string());
        }
    }

    /// Covers a function's volatility (by bare name, as `pg_proc.proname`).
    pub fn add_function(&mut self, name: &str) {
        if let Scope::Named { functions, .. } = self {
            let bare = name.rsplit('.').next().unwrap_or(name);
            functions.insert(bare.to_string());
        }
    }

    /// Covers the objects that are not relations as well.
    pub fn add_others(&mut self) {
        if let Scope::Named { others, .. } = self {
            *others = true;
        }
    }

    /// Both scopes' objects.
    pub fn union(self, other: Scope) -> Scope {
        match (self, other) {
            (
                Scope::Named {
                    mut relations,
                    mut keys_only,
                    others,
                    mut functions,
                },
                Scope::Named {
                    relations: more,
                    keys_only: more_keys,
                    others: also,
                    functions: called,
                },
            ) => {
                relations.extend(more);
                keys_only.extend(more_keys);
                keys_only.retain(|k| !relations.contains(k));
                functions.extend(called);
                Scope::Named {
                    relations,
                    keys_only,
                    others: others || also,
                    functions,
                }
            }
            _ => Scope::All,
        }
    }

    /// The relation names to bind as a query's text array, those covered
    /// whole and those by their keys alike; `None` for every relation.
    pub fn names(&self) -> Option<Vec<String>> {
        match self {
            Scope::All => None,
            Scope::Named {
                relations,
                keys_only,
                ..
            } => Some(relations.union(keys_only).cloned().collect()),
        }
    }

    /// The relations covered whole; `None` for every relation.
    pub fn whole_names(&self) -> Option<Vec<String>> {
        match self {
            Scope::All => None,
            Scope::Named { relations, .. } => Some(relations.iter().cloned().collect()),
        }
    }

    /// The relations of which only the foreign keys are covered.
    pub fn keys_only_names(&self) -> Vec<String> {
        match self {
            Scope::All => Vec::new(),
            Scope::Named { keys_only, .. } => keys_only.iter().cloned().collect(),
        }
    }

    /// The functions covered, by name; `None` for every function.
    pub fn functions_named(&self) -> Option<BTreeSet<String>> {
        match self {
            Scope::All => None,
            Scope::Named { functions, .. } => Some(functions.clone()),
        }
    }

    /// Whether a relation of that bare name is covered.
    pub fn covers(&self, name: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Named {
                relations,
                keys_only,
                ..
            } => relations.contains(name) || keys_only.contains(name),
        }
    }

    /// Whether schemas, types, functions and extensions are covered.
    pub fn others(&self) -> bool {
        match self {
            Scope::All => true,
            Scope::Named { others, .. } => *others,
        }
    }
}

/// What a scope of named relations widens to on the server, where their
/// dependents are known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Widened {
    /// Whose schema can change: the named relations, the tables whose
    /// foreign keys point at them, their partitions and inheritors, the
    /// views on them, the sequences they own, and the tables of named
    /// indexes.
    pub schema: Scope,
    /// Whose rows can change: the same, or every table when one of them
    /// has a trigger or a rule (which may write anywhere).
    pub data: Scope,
    /// Some relation of the scope exists (or the database cannot tell).
    pub found: bool,
}

impl Widened {
    /// Everything, both ways.
    pub fn all() -> Widened {
        Widened {
            schema: Scope::All,
            data: Scope::All,
            found: true,
        }
    }

    /// `schema`, whose rows are the data scope too with those of `rows`
    /// (relations whose schema cannot change), unless a trigger or a rule
    /// of one of its tables may write elsewhere.
    pub fn of(schema: Scope, rows: &[String], writes_elsewhere: bool, found: bool) -> Widened {
        let data = if writes_elsewhere {
            Scope::All
        } else {
            let mut data = schema.clone();
            rows.iter().for_each(|r| data.add_keys_only(r));
            data
        };
        Widened {
            schema,
            data,
            found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bare_and_all_absorbs() {
        let mut s = Scope::none();
        s.add("public.posts");
        s.add("\"Users\"");
        assert_eq!(
            s.names(),
            Some(vec!["Users".into(), "posts".into(), "users".into()])
        );
        assert!(s.covers("posts") && !s.covers("comments"));
        assert!(!s.others());
        let mut t = Scope::none();
        t.add_others();
        assert!(s.clone().union(t).others());
        assert_eq!(s.clone().union(Scope::All), Scope::All);
        assert_eq!(Scope::All.names(), None);
        assert!(Scope::All.others());
    }
}
