//! Shared test harness: a fresh database per test on each backend.
//!
//! SQLite always runs (a temp file). PostgreSQL runs when `ROLLBOOK_TEST_POSTGRES` holds a URL;
//! each test gets its own schema, so tests run in parallel. When the variable is set but the
//! server does not answer, the test fails; when CI=true and the variable is missing, it fails too,
//! so a CI run can never pass by silently skipping PostgreSQL.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use sqlx::Connection;

pub mod desk;
pub mod story;

/// The rollbook binary, its pins in a state directory of this test process (never the real
/// home): one temp dir per test binary, which the ledgers' distinct ids keep apart.
pub fn rollbook_command() -> Command {
    static STATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let state = STATE.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollbook"));
    command.env("ROLLBOOK_STATE_DIR", state.path());
    // `list` cuts its note to COLUMNS: tests that want a width set it.
    command.env_remove("COLUMNS");
    command
}

pub struct TestDb {
    pub backend: &'static str,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub schema: Option<String>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/ledger.db", dir.path().display());
        TestDb {
            backend: "sqlite",
            url,
            dir,
            schema: None,
        }
    }

    /// `None` when PostgreSQL tests are not requested (and we are not in CI).
    pub async fn postgres() -> Option<TestDb> {
        let base = match std::env::var("ROLLBOOK_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!("CI=true but ROLLBOOK_TEST_POSTGRES is not set: PostgreSQL tests must run in CI");
                }
                eprintln!("note: ROLLBOOK_TEST_POSTGRES is not set; skipping the PostgreSQL half of this test");
                return None;
            }
        };
        let schema = format!("rb_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "ROLLBOOK_TEST_POSTGRES={base} is set but PostgreSQL does not answer: {error}"
                )
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .expect("create test schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let dir = tempfile::tempdir().expect("temp dir");
        Some(TestDb {
            backend: "postgres",
            url,
            dir,
            schema: Some(schema),
        })
    }

    /// The state directory (pins) of this test's clients: inside its temp dir.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The rollbook binary on this database, its pins in `state_dir`.
    pub fn rollbook(&self, state_dir: &Path) -> Command {
        let mut command = rollbook_command();
        command
            .env("ROLLBOOK_STATE_DIR", state_dir)
            .env_remove("ROLLBOOK_DB")
            .arg("--db")
            .arg(&self.url);
        command
    }

    /// Runs raw SQL as an attacker with database access would (bypassing rollbook).
    pub async fn raw_execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        if self.backend == "sqlite" {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
            Ok(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut conn)
                .await?
                .rows_affected())
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            Ok(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut conn)
                .await?
                .rows_affected())
        }
    }

    /// Runs an UPDATE or DELETE of events or of the head row as an attacker with full control of
    /// the database would: past the triggers that keep the events table append-only and the
    /// head moving only with inserts. On SQLite those triggers are dropped (the file's owner
    /// can); on PostgreSQL the statements run with `session_replication_role = replica`, as a
    /// superuser may, which fires no ordinary trigger.
    pub async fn tamper(&self, sql: &str) -> Result<u64, sqlx::Error> {
        if self.backend == "sqlite" {
            for trigger in [
                "events_refuse_update",
                "events_refuse_delete",
                "ledgers_head_moves_only_by_insert",
                "ledgers_refuse_delete",
            ] {
                self.raw_execute(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                    .await?;
            }
            self.raw_execute(sql).await
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            let mut tx = conn.begin().await?;
            sqlx::raw_sql("SET LOCAL session_replication_role = replica")
                .execute(&mut *tx)
                .await?;
            let changed = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(changed)
        }
    }

    /// Rows of a query as strings, for comparing table contents.
    pub async fn raw_rows(&self, sql: &str) -> Vec<Vec<String>> {
        use sqlx::{Row, ValueRef};
        fn cell<R: Row>(row: &R, index: usize) -> String
        where
            usize: sqlx::ColumnIndex<R>,
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            if row
                .try_get_raw(index)
                .map(|value| value.is_null())
                .unwrap_or(true)
            {
                return "NULL".into();
            }
            row.try_get::<String, _>(index)
                .or_else(|_| row.try_get::<i64, _>(index).map(|n| n.to_string()))
                .unwrap_or_else(|_| "?".into())
        }
        if self.backend == "sqlite" {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.iter()
                .map(|row| (0..row.columns().len()).map(|i| cell(row, i)).collect())
                .collect()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.iter()
                .map(|row| (0..row.columns().len()).map(|i| cell(row, i)).collect())
                .collect()
        }
    }
}

impl Drop for TestDb {
    /// Drops the test's PostgreSQL schema, so repeated runs do not pile schemas up in the shared
    /// database. Best effort: a failure here must not hide the test's own result.
    fn drop(&mut self) {
        let (Some(schema), Ok(base)) =
            (self.schema.take(), std::env::var("ROLLBOOK_TEST_POSTGRES"))
        else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
    }
}

/// A byte string as a SQL literal of the backend.
pub fn sql_bytes(db: &TestDb, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    if db.backend == "sqlite" {
        format!("X'{hex}'")
    } else {
        format!("'\\x{hex}'::bytea")
    }
}

pub fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `verb INTO events (...) VALUES (...) tail` for a whole event row, as an attacker writes it.
pub fn event_row_sql(
    db: &TestDb,
    verb: &str,
    event: &rollbook::domain::envelope::StoredEvent,
    tail: &str,
) -> String {
    format!(
        "{verb} INTO events (ledger_id, seq, stream_id, stream_version, event_id, event_type, \
         schema_version, recorded_at, actor, payload, prev_hash, hash) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) {tail}",
        sql_text(&event.ledger_id.to_string()),
        event.seq,
        sql_text(&event.stream_id),
        event.stream_version,
        sql_text(&event.event_id.to_string()),
        sql_text(&event.event_type),
        event.schema_version,
        sql_text(&event.recorded_at),
        event.actor.as_deref().map_or("NULL".into(), sql_text),
        sql_bytes(db, &event.payload),
        sql_bytes(db, &event.prev_hash),
        sql_bytes(db, &event.hash),
    )
}

/// Defines `<name>_sqlite` and `<name>_postgres` tests that run the same async body.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            pub mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(&$crate::common::TestDb::sqlite()).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::common::TestDb::postgres().await {
                        super::$name(&db).await;
                    }
                }
            }
        )*
    };
}

/// Gives `proposal` a closed layer of its own, new on every call in this test process, so that
/// the rolls a test proposes never draw on one another's budget (methodology, "Drawing on one
/// closed layer") unless the test means them to. One layer has one set of numbers: each layer's
/// fees are one cent more than the last's.
pub fn own_layer(proposal: &mut rollbook::sizing::Proposal) {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    proposal.set_closed_layer(&format!("VIX-TEST-L{n}"), 26.0 + f64::from(n) * 0.01);
}

/// A signer entry for `key` under `name`: no role, no lifetime.
pub fn entry(
    name: &str,
    key: &rollbook::crypto::keys::SecretKey,
) -> rollbook::domain::events::SignerEntry {
    rollbook::domain::events::SignerEntry {
        name: name.into(),
        role: None,
        public_key: rollbook::crypto::to_hex(&key.public().as_bytes()),
        key_id: key.public().key_id().to_string(),
        valid_after: None,
        valid_before: None,
    }
}
