//! Support for tests that run the same suite on both engines: a fresh
//! SQLite file, or a fresh PostgreSQL database on the server named by
//! `CRRT_TEST_POSTGRES_URL` (which `.ci/run` starts). Not for production.

use sqlx::Connection;

/// Which engines the test suite runs on here: SQLite always, PostgreSQL
/// when `CRRT_TEST_POSTGRES_URL` is set. Under `CI=true` a missing
/// PostgreSQL is an error, not a skip.
pub fn backends() -> Vec<&'static str> {
    let mut out = vec!["sqlite"];
    if std::env::var_os("CRRT_TEST_POSTGRES_URL").is_some() {
        out.push("postgres");
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but CRRT_TEST_POSTGRES_URL is not set"
        );
        eprintln!("note: PostgreSQL tests skipped (set CRRT_TEST_POSTGRES_URL to run them)");
    }
    out
}

/// A database URL nobody else uses: a file in `dir` for SQLite, a new
/// database for PostgreSQL.
pub async fn fresh_database(backend: &str, dir: &std::path::Path) -> String {
    match backend {
        "postgres" => {
            let base = std::env::var("CRRT_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:54329/postgres".into());
            let name = format!(
                "crrt_test_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            #[allow(clippy::expect_used)]
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .expect("the test PostgreSQL server answers");
            #[allow(clippy::expect_used)]
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("a scratch database can be created");
            let (head, _) = base.rsplit_once('/').unwrap_or((&base, ""));
            format!("{head}/{name}")
        }
        _ => format!(
            "sqlite://{}",
            dir.join(format!(
                "test-{}.db",
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ))
            .display()
        ),
    }
}

/// Runs a raw statement, for tests that play the attacker (altering the
/// audit trail behind the platform's back).
pub async fn tamper(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    #[allow(clippy::expect_used)]
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connects");
    #[allow(clippy::expect_used)]
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("the tampering statement runs");
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
