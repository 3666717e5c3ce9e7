//! The revision graph of one branch's migrations directory, and where a
//! database stands in it: heads, applied and pending revisions, drift, and
//! the path (with its data loss) of a downgrade.

use super::{DataLoss, Revision};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The revisions of one commit's migrations directory.
#[derive(Debug, Clone)]
pub struct Graph {
    revisions: BTreeMap<String, Revision>,
    /// Parents first; ties broken by id, so the order is stable.
    order: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    Duplicate {
        id: String,
        files: [String; 2],
    },
    UnknownParent {
        id: String,
        file: String,
        parent: String,
    },
    Cycle {
        ids: Vec<String>,
    },
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::Duplicate { id, files } => {
                write!(
                    f,
                    "revision {id} is defined twice, in {} and {}",
                    files[0], files[1]
                )
            }
            GraphError::UnknownParent { id, file, parent } => {
                write!(
                    f,
                    "revision {id} ({file}) revises {parent}, which is not in the directory"
                )
            }
            GraphError::Cycle { ids } => write!(f, "the revisions {} form a cycle", ids.join(", ")),
        }
    }
}

impl std::error::Error for GraphError {}

/// Where a database stands relative to the code's revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub heads: Vec<String>,
    /// The rows of `alembic_version`.
    pub current: Vec<String>,
    /// Revisions in the code that the database has not run, parents first.
    pub pending: Vec<String>,
    /// Rows of `alembic_version` the code does not contain: the database is
    /// ahead of (or beside) this branch.
    pub drift: Vec<String>,
}

impl MigrationState {
    pub fn is_at_head(&self) -> bool {
        self.pending.is_empty() && self.drift.is_empty()
    }
}

impl Graph {
    pub fn new(revisions: Vec<Revision>) -> Result<Self, GraphError> {
        let mut map: BTreeMap<String, Revision> = BTreeMap::new();
        for revision in revisions {
            if let Some(existing) = map.get(&revision.id) {
                return Err(GraphError::Duplicate {
                    id: revision.id.clone(),
                    files: [existing.file.clone(), revision.file.clone()],
                });
            }
            map.insert(revision.id.clone(), revision);
        }
        for revision in map.values() {
            for parent in revision.down.iter().chain(&revision.depends_on) {
                if !map.contains_key(parent) {
                    return Err(GraphError::UnknownParent {
                        id: revision.id.clone(),
                        file: revision.file.clone(),
                        parent: parent.clone(),
                    });
                }
            }
        }
        // Kahn's algorithm, smallest id first among the ready ones.
        let mut waiting: BTreeMap<&str, usize> = map
            .values()
            .map(|r| (r.id.as_str(), parents(r).count()))
            .collect();
        let mut ready: BTreeSet<&str> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| *id)
            .collect();
        let mut order = Vec::with_capacity(map.len());
        while let Some(id) = ready.pop_first() {
            waiting.remove(id);
            order.push(id.to_owned());
            for child in map.values().filter(|r| parents(r).any(|p| p == id)) {
                if let Some(n) = waiting.get_mut(child.id.as_str()) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(child.id.as_str());
                    }
                }
            }
        }
        if !waiting.is_empty() {
            return Err(GraphError::Cycle {
                ids: waiting.keys().map(|id| (*id).to_owned()).collect(),
            });
        }
        Ok(Self {
            revisions: map,
            order,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Revision> {
        self.revisions.get(id)
    }

    pub fn len(&self) -> usize {
        self.revisions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }

    /// Every revision, parents first.
    pub fn ordered(&self) -> impl Iterator<Item = &Revision> {
        self.order.iter().filter_map(|id| self.revisions.get(id))
    }

    /// Revisions nobody revises.
    pub fn heads(&self) -> Vec<String> {
        let revised: BTreeSet<&str> = self
            .revisions
            .values()
            .flat_map(|r| r.down.iter().map(String::as_str))
            .collect();
        self.revisions
            .keys()
            .filter(|id| !revised.contains(id.as_str()))
            .cloned()
            .collect()
    }

    /// `ids` and everything they depend on. Unknown ids are ignored.
    pub fn ancestry<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = ids.into_iter().collect();
        while let Some(id) = stack.pop() {
            let Some(revision) = self.revisions.get(id) else {
                continue;
            };
            if seen.insert(revision.id.clone()) {
                stack.extend(parents(revision).map(String::as_str));
            }
        }
        seen
    }

    /// Where a database whose `alembic_version` holds `current` stands.
    pub fn state(&self, current: &[String]) -> MigrationState {
        let applied = self.ancestry(current.iter().map(String::as_str));
        MigrationState {
            heads: self.heads(),
            current: current.to_vec(),
            pending: self
                .order
                .iter()
                .filter(|id| !applied.contains(*id))
                .cloned()
                .collect(),
            drift: current
                .iter()
                .filter(|id| !self.revisions.contains_key(*id))
                .cloned()
                .collect(),
        }
    }

    /// The revisions `alembic downgrade target` undoes from `current`,
    /// children first (the order Alembic runs them). `None` is `base`.
    pub fn downgrade_path(
        &self,
        current: &[String],
        target: Option<&str>,
    ) -> Result<Vec<&Revision>, String> {
        if let Some(unknown) = current.iter().find(|id| !self.revisions.contains_key(*id)) {
            return Err(format!(
                "the database is at {unknown}, which these migrations do not contain"
            ));
        }
        let applied = self.ancestry(current.iter().map(String::as_str));
        // Alembic undoes the applied revisions that descend from the target
        // (all of them for base); a merge's other side stays applied.
        let undone: BTreeSet<String> = match target {
            None => applied.clone(),
            Some(target) if !self.revisions.contains_key(target) => {
                return Err(format!("{target} is not a revision of these migrations"));
            }
            Some(target) if !applied.contains(target) => {
                return Err(format!(
                    "{target} is not applied, so there is nothing to downgrade to"
                ));
            }
            Some(target) => applied
                .iter()
                .filter(|id| id.as_str() != target && self.ancestry([id.as_str()]).contains(target))
                .cloned()
                .collect(),
        };
        Ok(self
            .order
            .iter()
            .rev()
            .filter(|id| undone.contains(*id))
            .filter_map(|id| self.revisions.get(id))
            .collect())
    }
}

fn parents(revision: &Revision) -> impl Iterator<Item = &String> {
    revision.down.iter().chain(&revision.depends_on)
}

/// The data loss of a downgrade path, with the revision each comes from.
pub fn data_loss<'a>(path: &[&'a Revision]) -> Vec<(&'a str, &'a DataLoss)> {
    path.iter()
        .flat_map(|r| r.data_loss.iter().map(move |d| (r.id.as_str(), d)))
        .collect()
}
