//! The schema, as numbered steps applied once each, in order, each in its
//! own transaction. The SQL is what SQLite and PostgreSQL both accept.

use sqlx::Row;

use crate::{Result, Store};

const STEPS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE organisations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        country TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        org_id TEXT NOT NULL REFERENCES organisations (id),
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        skills TEXT NOT NULL,
        languages TEXT NOT NULL,
        availability TEXT NOT NULL,
        disabled BIGINT NOT NULL,
        version BIGINT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX users_org ON users (org_id);
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users (id),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users (id),
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES organisations (id),
        filed_by TEXT NOT NULL REFERENCES users (id),
        summary TEXT NOT NULL,
        symptoms TEXT NOT NULL,
        affected_systems TEXT NOT NULL,
        urgency TEXT NOT NULL,
        tlp TEXT NOT NULL,
        capabilities TEXT NOT NULL,
        mitigations TEXT NOT NULL,
        status TEXT NOT NULL,
        decline_reason TEXT,
        version BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX requests_org ON requests (org_id, created_at);
    CREATE TABLE audit_events (
        seq BIGINT PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT,
        action TEXT NOT NULL,
        object_type TEXT NOT NULL,
        object_id TEXT NOT NULL,
        before_json TEXT,
        after_json TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_object ON audit_events (object_type, object_id, seq);
    CREATE TABLE audit_head (
        id BIGINT PRIMARY KEY,
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
    );
    INSERT INTO audit_head (id, seq, hash)
        VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');",
    ),
    (
        2,
        "ALTER TABLE requests ADD COLUMN decided_at TEXT;
    CREATE TABLE council_positions (
        request_id TEXT NOT NULL REFERENCES requests (id),
        org_id TEXT NOT NULL REFERENCES organisations (id),
        position TEXT NOT NULL,
        recorded_by TEXT NOT NULL REFERENCES users (id),
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (request_id, org_id)
    );
    CREATE TABLE missions (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL UNIQUE REFERENCES requests (id),
        org_id TEXT NOT NULL REFERENCES organisations (id),
        title TEXT NOT NULL,
        status TEXT NOT NULL,
        checklist TEXT NOT NULL,
        team_confirmed_at TEXT,
        version BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE mission_members (
        mission_id TEXT NOT NULL REFERENCES missions (id),
        user_id TEXT NOT NULL REFERENCES users (id),
        added_at TEXT NOT NULL,
        PRIMARY KEY (mission_id, user_id)
    );
    CREATE INDEX mission_members_user ON mission_members (user_id);",
    ),
    (
        3,
        "CREATE TABLE cases (
        id TEXT PRIMARY KEY,
        mission_id TEXT NOT NULL REFERENCES missions (id),
        title TEXT NOT NULL,
        playbook TEXT,
        status TEXT NOT NULL,
        version BIGINT NOT NULL,
        created_by TEXT NOT NULL REFERENCES users (id),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX cases_mission ON cases (mission_id, created_at);
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases (id),
        title TEXT NOT NULL,
        assignee_id TEXT REFERENCES users (id),
        status TEXT NOT NULL,
        due_on TEXT,
        position BIGINT NOT NULL,
        version BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX tasks_case ON tasks (case_id, position);
    CREATE TABLE notes (
        id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases (id),
        author_id TEXT NOT NULL REFERENCES users (id),
        markdown TEXT NOT NULL,
        html TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX notes_case ON notes (case_id, created_at);",
    ),
    (
        4,
        "CREATE TABLE councils (
        request_id TEXT PRIMARY KEY REFERENCES requests (id),
        lead_org_id TEXT NOT NULL REFERENCES organisations (id),
        rotating_org_id TEXT REFERENCES organisations (id),
        convened_by TEXT NOT NULL REFERENCES users (id),
        convened_at TEXT NOT NULL
    );",
    ),
    (
        5,
        "CREATE TABLE evidence (
        id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases (id),
        name TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        uploaded_by TEXT NOT NULL REFERENCES users (id),
        uploaded_from TEXT NOT NULL,
        uploaded_at TEXT NOT NULL,
        UNIQUE (case_id, sha256)
    );
    CREATE INDEX evidence_sha256 ON evidence (sha256);",
    ),
    (
        6,
        "CREATE TABLE rulepacks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        n_files BIGINT NOT NULL,
        n_rules BIGINT NOT NULL,
        problems TEXT NOT NULL,
        uploaded_by TEXT NOT NULL REFERENCES users (id),
        uploaded_at TEXT NOT NULL
    );
    CREATE TABLE rulepack_files (
        pack_id TEXT NOT NULL REFERENCES rulepacks (id),
        path TEXT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (pack_id, path)
    );",
    ),
    (
        7,
        "CREATE TABLE hunts (
        id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases (id),
        status TEXT NOT NULL,
        rulepack_ids TEXT NOT NULL,
        evidence_ids TEXT NOT NULL,
        requested_by TEXT NOT NULL REFERENCES users (id),
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        lease_owner TEXT,
        lease_expires_at TEXT,
        attempts BIGINT NOT NULL,
        records_done BIGINT NOT NULL,
        bytes_done BIGINT NOT NULL,
        bytes_total BIGINT NOT NULL,
        n_findings BIGINT NOT NULL,
        error TEXT
    );
    CREATE INDEX hunts_queue ON hunts (status, created_at);
    CREATE INDEX hunts_case ON hunts (case_id, created_at);
    CREATE TABLE findings (
        id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases (id),
        hunt_id TEXT NOT NULL REFERENCES hunts (id),
        evidence_id TEXT REFERENCES evidence (id),
        evidence_file TEXT NOT NULL,
        rule_id TEXT,
        rule_title TEXT NOT NULL,
        level TEXT NOT NULL,
        tags TEXT NOT NULL,
        at TEXT,
        host TEXT,
        channel TEXT,
        event_id BIGINT,
        record_id BIGINT,
        event TEXT NOT NULL,
        triage TEXT NOT NULL,
        triage_comment TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX findings_case ON findings (case_id, at);",
    ),
    (
        8,
        "CREATE TABLE indicators (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        tlp TEXT NOT NULL,
        source_org_id TEXT NOT NULL REFERENCES organisations (id),
        created_by TEXT NOT NULL REFERENCES users (id),
        confidence BIGINT,
        first_seen TEXT,
        last_seen TEXT,
        expires_at TEXT,
        tags TEXT NOT NULL,
        description TEXT,
        sightings BIGINT NOT NULL,
        version BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (source_org_id, kind, value)
    );
    CREATE INDEX indicators_value ON indicators (value);
    CREATE INDEX indicators_updated ON indicators (updated_at, id);
    CREATE TABLE indicator_recipients (
        indicator_id TEXT NOT NULL REFERENCES indicators (id),
        org_id TEXT REFERENCES organisations (id),
        user_id TEXT REFERENCES users (id)
    );
    CREATE INDEX indicator_recipients_of ON indicator_recipients (indicator_id);
    CREATE TABLE indicator_links (
        indicator_id TEXT NOT NULL REFERENCES indicators (id),
        mission_id TEXT NOT NULL REFERENCES missions (id),
        case_id TEXT REFERENCES cases (id)
    );
    CREATE INDEX indicator_links_of ON indicator_links (indicator_id);
    CREATE INDEX indicator_links_mission ON indicator_links (mission_id, case_id);
    CREATE TABLE indicator_sightings (
        id TEXT PRIMARY KEY,
        indicator_id TEXT NOT NULL REFERENCES indicators (id),
        case_id TEXT REFERENCES cases (id),
        seen_in TEXT NOT NULL,
        at TEXT,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX indicator_sightings_of ON indicator_sightings (indicator_id);",
    ),
    (
        9,
        "ALTER TABLE hunts ADD COLUMN indicator_ids TEXT NOT NULL DEFAULT '[]'",
    ),
    (
        10,
        "CREATE TABLE taxii_objects (
        collection TEXT NOT NULL,
        org_id TEXT NOT NULL REFERENCES organisations (id),
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        date_added TEXT NOT NULL,
        type TEXT NOT NULL,
        spec_version TEXT NOT NULL,
        object TEXT NOT NULL,
        PRIMARY KEY (collection, org_id, id, version)
    );
    CREATE INDEX taxii_objects_added ON taxii_objects (collection, org_id, date_added, id, version);
    CREATE TABLE taxii_status (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES organisations (id),
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
    );",
    ),
    (
        11,
        "CREATE TABLE taxii_subscriptions (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        source_org_id TEXT NOT NULL REFERENCES organisations (id),
        recorder_id TEXT NOT NULL REFERENCES users (id),
        auth TEXT NOT NULL,
        every_seconds BIGINT NOT NULL,
        added_after TEXT,
        next_run TEXT NOT NULL,
        last_run TEXT,
        last_result TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX taxii_subscriptions_due ON taxii_subscriptions (next_run);",
    ),
    (
        12,
        "CREATE TABLE watch_targets (
        id TEXT PRIMARY KEY,
        mission_id TEXT NOT NULL REFERENCES missions (id),
        name TEXT NOT NULL,
        url TEXT NOT NULL,
        settings TEXT NOT NULL,
        created_by TEXT NOT NULL REFERENCES users (id),
        created_at TEXT NOT NULL,
        removed_at TEXT,
        baseline TEXT,
        last_check_at TEXT,
        last_result TEXT,
        last_latency_ms BIGINT,
        p50_ms BIGINT,
        p95_ms BIGINT
    );
    CREATE INDEX watch_targets_mission ON watch_targets (mission_id, removed_at);
    CREATE TABLE watch_alerts (
        id TEXT PRIMARY KEY,
        target_id TEXT NOT NULL REFERENCES watch_targets (id),
        mission_id TEXT NOT NULL REFERENCES missions (id),
        kind TEXT NOT NULL,
        summary TEXT NOT NULL,
        flapping BIGINT NOT NULL,
        opened_at TEXT NOT NULL,
        closed_at TEXT,
        facts TEXT NOT NULL,
        body_sha256 TEXT,
        diff_sha256 TEXT
    );
    CREATE INDEX watch_alerts_mission ON watch_alerts (mission_id, opened_at);
    CREATE INDEX watch_alerts_open ON watch_alerts (target_id, kind, closed_at);",
    ),
    (
        13,
        "CREATE TABLE watch_notifications (
        mission_id TEXT PRIMARY KEY REFERENCES missions (id),
        webhook_url TEXT,
        webhook_secret TEXT,
        emails TEXT NOT NULL,
        updated_by TEXT NOT NULL REFERENCES users (id),
        updated_at TEXT NOT NULL
    );",
    ),
    (
        14,
        "ALTER TABLE watch_targets ADD COLUMN generation BIGINT NOT NULL DEFAULT 0",
    ),
    (
        15,
        "ALTER TABLE rulepacks ADD COLUMN kind TEXT NOT NULL DEFAULT 'sigma'",
    ),
    (
        16,
        "CREATE TABLE mission_recommendations (
        mission_id TEXT PRIMARY KEY REFERENCES missions (id),
        markdown TEXT NOT NULL,
        updated_by TEXT NOT NULL REFERENCES users (id),
        updated_at TEXT NOT NULL
    );
    CREATE TABLE sitreps (
        id TEXT PRIMARY KEY,
        mission_id TEXT NOT NULL REFERENCES missions (id),
        period_from TEXT,
        period_to TEXT NOT NULL,
        issued_by TEXT NOT NULL REFERENCES users (id),
        issued_at TEXT NOT NULL
    );
    CREATE INDEX sitreps_mission ON sitreps (mission_id, period_to);",
    ),
    (17, "ALTER TABLE taxii_subscriptions ADD COLUMN ca_pem TEXT"),
    // TLP:AMBER addressed to the member-state teams as a group: one flag
    // instead of a recipient row per team (six rows per shared indicator
    // were most of the cost of a partner's TAXII submission).
    (
        18,
        "ALTER TABLE indicators ADD COLUMN to_members BIGINT NOT NULL DEFAULT 0",
    ),
    // TAXII objects found by a 64-bit key instead of a primary key on
    // (collection, org_id, id, version): see `taxii.rs`. The rows are
    // copied over with their keys by `rekey_taxii_objects`.
    (
        19,
        "ALTER TABLE taxii_objects RENAME TO taxii_objects_before_19;
    DROP INDEX taxii_objects_added;
    CREATE TABLE taxii_objects (
        collection TEXT NOT NULL,
        org_id TEXT NOT NULL REFERENCES organisations (id),
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        date_added TEXT NOT NULL,
        type TEXT NOT NULL,
        spec_version TEXT NOT NULL,
        object TEXT NOT NULL,
        id_key BIGINT NOT NULL
    );
    CREATE INDEX taxii_objects_key ON taxii_objects (id_key);
    CREATE INDEX taxii_objects_added ON taxii_objects (collection, org_id, date_added, id, version);",
    ),
];

pub(crate) async fn run(store: &Store) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS crrt_schema (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .execute(&store.pool)
    .await?;
    for (version, sql) in STEPS {
        let mut tx = store.pool.begin().await?;
        let applied = sqlx::query("SELECT COUNT(*) FROM crrt_schema WHERE version = $1")
            .bind(*version)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>(0)?
            > 0;
        if applied {
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await?;
        if *version == 19 {
            crate::taxii::rekey_taxii_objects(&mut tx, store.backend == crate::Backend::Sqlite)
                .await?;
        }
        sqlx::query("INSERT INTO crrt_schema (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(jiff::Timestamp::now().to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
