//! The schema version and the migrations that bring an older file up to it.
//!
//! The version lives in the `meta` table under `schema_version` (u32 BE); a file without it is
//! version 0 (a new file, or one written before versioning). [`MIGRATIONS`] lists the steps in
//! order: step `i` takes a file from version `i` to `i + 1`, and [`SCHEMA_VERSION`] is their
//! count. [`run`] applies each missing step in its own write transaction together with the new
//! version number, so a crash mid-migration leaves the file at the last completed version and
//! the next open resumes from there. A file newer than [`SCHEMA_VERSION`] is refused with its tables unchanged.
//!
//! Policy (also in `spec/store.md`): steps are append-only, never edited once released; a step
//! refers to the tables as they were at its version (not to [`tables::ALL`]); the `meta` table's
//! name and types never change.

use redb::{Database, Durability, ReadableTable, TableHandle, WriteTransaction};

use crate::error::{DbContext, StoreError};
use crate::tables;

/// One migration step: changes a file at version `to - 1` into one at version `to`.
pub(crate) type Step = fn(&WriteTransaction) -> Result<(), StoreError>;

/// A migration step and what it does.
pub(crate) struct Migration {
    /// The version the file has after this step.
    pub(crate) to: u32,
    /// What the step does, for the log.
    pub(crate) description: &'static str,
    /// The step itself.
    pub(crate) apply: Step,
}

/// Every migration, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 1,
        description: "create the v1 tables",
        apply: v1_create_tables,
    },
    Migration {
        to: 2,
        description: "create the hire tables (hires, receipts, receipt_payloads, hire_blobs)",
        apply: v2_create_hire_tables,
    },
    Migration {
        to: 3,
        description: "create the reputation tables (outcomes, equivocations, outbox)",
        apply: v3_create_reputation_tables,
    },
];

/// The schema version this code reads and writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// v0 -> v1: creates the meta, manifests, manifest_latest, manifest_expiry, agents and
/// node_state tables (opening a table in a write transaction creates it).
fn v1_create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    for def in [
        tables::META,
        tables::MANIFESTS,
        tables::MANIFEST_LATEST,
        tables::MANIFEST_EXPIRY,
        tables::AGENTS,
        tables::NODE_STATE,
    ] {
        txn.open_table(def)
            .with_ctx(|| format!("migration to v1: creating table {}", def.name()))?;
    }
    Ok(())
}

/// v1 -> v2: creates the hires, receipts, receipt_payloads and hire_blobs tables (empty). The
/// v1 tables and their rows are untouched.
fn v2_create_hire_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    for def in [
        tables::HIRES,
        tables::RECEIPTS,
        tables::RECEIPT_PAYLOADS,
        tables::HIRE_BLOBS,
    ] {
        txn.open_table(def)
            .with_ctx(|| format!("migration to v2: creating table {}", def.name()))?;
    }
    Ok(())
}

/// v2 -> v3: creates the outcomes, equivocations and outbox tables (empty). Earlier tables
/// and their rows are untouched.
fn v3_create_reputation_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    for def in [tables::OUTCOMES, tables::EQUIVOCATIONS, tables::OUTBOX] {
        txn.open_table(def)
            .with_ctx(|| format!("migration to v3: creating table {}", def.name()))?;
    }
    Ok(())
}

/// Brings the database to the current schema: [`run_with`] over [`MIGRATIONS`], then makes sure
/// every table of [`tables::ALL`] exists. Returns the version.
pub(crate) fn run(db: &Database) -> Result<u32, StoreError> {
    run_with(db, MIGRATIONS, ensure_tables)
}

/// Creates any table of the current schema that is missing (a damaged or hand-edited file: a
/// migrated file has them all), with a warning.
fn ensure_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    let existing: Vec<String> = txn
        .list_tables()
        .ctx("listing tables")?
        .map(|t| t.name().to_owned())
        .collect();
    for def in tables::ALL {
        if !existing.iter().any(|name| name == def.name()) {
            tracing::warn!(table = def.name(), "store table missing; creating it empty");
            txn.open_table(def)
                .with_ctx(|| format!("creating missing table {}", def.name()))?;
        }
    }
    Ok(())
}

/// Reads the version recorded in `meta` (0 when absent), opening (creating) `meta`.
fn read_version(txn: &WriteTransaction) -> Result<u32, StoreError> {
    let meta = txn.open_table(tables::META).ctx("opening table meta")?;
    let stored = meta
        .get(tables::SCHEMA_VERSION_KEY)
        .ctx("reading meta.schema_version")?;
    match stored {
        Some(guard) => tables::decode_version(guard.value()),
        None => Ok(0),
    }
}

/// Records `version` in `meta`.
fn write_version(txn: &WriteTransaction, version: u32) -> Result<(), StoreError> {
    let mut meta = txn.open_table(tables::META).ctx("opening table meta")?;
    meta.insert(
        tables::SCHEMA_VERSION_KEY,
        tables::encode_version(version).as_slice(),
    )
    .ctx("writing meta.schema_version")?;
    Ok(())
}

/// Applies the steps of `steps` the file lacks, one write transaction per step, then runs
/// `at_current` in a final transaction at the current version (`steps.len()`). Returns that
/// version, or [`StoreError::SchemaTooNew`] without writing anything.
pub(crate) fn run_with(
    db: &Database,
    steps: &[Migration],
    at_current: Step,
) -> Result<u32, StoreError> {
    let supported = u32::try_from(steps.len())
        .map_err(|_| StoreError::corrupt("more migrations than fit a u32"))?;
    loop {
        let mut txn = db
            .begin_write()
            .ctx("beginning the migration transaction")?;
        txn.set_durability(Durability::Immediate)
            .ctx("setting durability")?;
        let found = read_version(&txn)?;
        if found > supported {
            txn.abort().ctx("aborting the migration transaction")?;
            return Err(StoreError::SchemaTooNew { found, supported });
        }
        if found == supported {
            at_current(&txn)?;
            txn.commit().ctx("committing the schema check")?;
            return Ok(found);
        }
        let step = steps
            .get(found as usize)
            .ok_or_else(|| StoreError::corrupt(format!("no migration from v{found}")))?;
        if step.to != found + 1 {
            return Err(StoreError::corrupt(format!(
                "migration list out of order: step {found} goes to v{}",
                step.to
            )));
        }
        tracing::info!(
            from = found,
            to = step.to,
            step = step.description,
            "migrating store"
        );
        (step.apply)(&txn)?;
        write_version(&txn, step.to)?;
        txn.commit()
            .with_ctx(|| format!("committing the migration to v{}", step.to))?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use redb::{ReadableDatabase, TableDefinition};

    use super::*;

    const LOG: TableDefinition<'static, u32, &str> = TableDefinition::new("log");

    fn log(txn: &WriteTransaction, n: u32, what: &'static str) -> Result<(), StoreError> {
        let mut t = txn.open_table(LOG).ctx("log")?;
        t.insert(n, what).ctx("log")?;
        Ok(())
    }
    fn one(txn: &WriteTransaction) -> Result<(), StoreError> {
        log(txn, 1, "one")
    }
    fn two(txn: &WriteTransaction) -> Result<(), StoreError> {
        log(txn, 2, "two")
    }
    fn three(txn: &WriteTransaction) -> Result<(), StoreError> {
        log(txn, 3, "three")
    }
    fn fail(_: &WriteTransaction) -> Result<(), StoreError> {
        Err(StoreError::corrupt("step failed"))
    }
    fn nothing(_: &WriteTransaction) -> Result<(), StoreError> {
        Ok(())
    }

    fn steps() -> [Migration; 3] {
        [
            Migration {
                to: 1,
                description: "one",
                apply: one,
            },
            Migration {
                to: 2,
                description: "two",
                apply: two,
            },
            Migration {
                to: 3,
                description: "three",
                apply: three,
            },
        ]
    }

    fn logged(db: &Database) -> Vec<(u32, String)> {
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(LOG).unwrap();
        t.iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value(), v.value().to_owned())
            })
            .collect()
    }

    #[test]
    fn runs_missing_steps_in_order_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("m.redb")).unwrap();
        // A file at v0 goes to v2 with the first two steps.
        assert_eq!(run_with(&db, &steps()[..2], nothing).unwrap(), 2);
        assert_eq!(logged(&db), vec![(1, "one".into()), (2, "two".into())]);
        // A newer build runs only step 3.
        assert_eq!(run_with(&db, &steps(), nothing).unwrap(), 3);
        assert_eq!(logged(&db).len(), 3);
        // Nothing left to do.
        assert_eq!(run_with(&db, &steps(), nothing).unwrap(), 3);
        assert_eq!(logged(&db).len(), 3);
        // An older build refuses the file.
        assert!(matches!(
            run_with(&db, &steps()[..1], nothing),
            Err(StoreError::SchemaTooNew {
                found: 3,
                supported: 1
            })
        ));
    }

    #[test]
    fn a_failed_step_keeps_the_last_completed_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("m.redb")).unwrap();
        let mut list = steps();
        list[1].apply = fail;
        assert!(run_with(&db, &list, nothing).is_err());
        let txn = db.begin_write().unwrap();
        assert_eq!(read_version(&txn).unwrap(), 1);
        drop(txn);
        assert_eq!(logged(&db), vec![(1, "one".into())]);
        // Fixed, the next run resumes from v1.
        assert_eq!(run_with(&db, &steps(), nothing).unwrap(), 3);
        assert_eq!(logged(&db).len(), 3);
    }

    #[test]
    fn the_list_is_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.to as usize, i + 1, "{}", m.description);
        }
        assert_eq!(SCHEMA_VERSION, 3);
    }

    #[test]
    fn v1_file_gets_the_hire_tables() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("m.redb")).unwrap();
        // The released v1 step alone, as a v1 build would run it.
        assert_eq!(run_with(&db, &MIGRATIONS[..1], nothing).unwrap(), 1);
        let names = |db: &Database| -> Vec<String> {
            let txn = db.begin_read().unwrap();
            let mut names: Vec<String> = txn
                .list_tables()
                .unwrap()
                .map(|t| t.name().to_owned())
                .collect();
            names.sort();
            names
        };
        assert!(!names(&db).contains(&"receipts".to_owned()));
        assert_eq!(run(&db).unwrap(), SCHEMA_VERSION);
        let mut expected: Vec<String> = tables::ALL.iter().map(|t| t.name().to_owned()).collect();
        expected.sort();
        assert_eq!(names(&db), expected);
        // A v1 build refuses the migrated file.
        assert!(matches!(
            run_with(&db, &MIGRATIONS[..1], nothing),
            Err(StoreError::SchemaTooNew {
                found: SCHEMA_VERSION,
                supported: 1
            })
        ));
    }
}
