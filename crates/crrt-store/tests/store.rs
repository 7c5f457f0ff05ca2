//! The store on both engines: schema, uniqueness, optimistic versions and
//! the audit chain, including an attacker editing rows behind its back.

use crrt_store::testing::{backends, fresh_database, tamper};
use crrt_store::{AuditEntry, AuditVerification, Organisation, Store, StoreError};

fn org(name: &str) -> Organisation {
    Organisation {
        id: format!("id-{name}"),
        name: name.into(),
        kind: "member".into(),
        country: "EE".into(),
        created_at: "2022-02-24T04:00:00.000000Z".into(),
    }
}

fn entry(n: u32) -> AuditEntry {
    AuditEntry {
        at: format!("2022-02-24T04:00:{n:02}.000000Z"),
        actor: Some("user-1".into()),
        action: "organisation.create".into(),
        object_type: "organisation".into(),
        object_id: format!("org-{n}"),
        before: None,
        after: Some(serde_json::json!({"name": format!("org {n}"), "b": 1, "a": [1, 2]})),
    }
}

async fn store_with_events(url: &str, n: u32) -> Store {
    let store = Store::open(url).await.expect("opens");
    for i in 1..=n {
        let mut tx = store.begin().await.expect("begin");
        tx.append_audit(&entry(i)).await.expect("append");
        tx.commit().await.expect("commit");
    }
    store
}

#[tokio::test]
async fn schema_is_created_once_and_names_are_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in backends() {
        let url = fresh_database(backend, dir.path()).await;
        let store = Store::open(&url).await.expect("opens");
        let mut tx = store.begin().await.expect("begin");
        tx.insert_org(&org("CERT-EE")).await.expect("insert");
        tx.commit().await.expect("commit");
        // Opening again runs no step twice.
        let again = Store::open(&url).await.expect("reopens");
        assert_eq!(
            again
                .org_by_name("CERT-EE")
                .await
                .expect("read")
                .map(|o| o.country),
            Some("EE".into())
        );
        let mut tx = again.begin().await.expect("begin");
        let mut duplicate = org("CERT-EE");
        duplicate.id = "other".into();
        assert!(
            matches!(
                tx.insert_org(&duplicate).await,
                Err(StoreError::Duplicate(_))
            ),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in backends() {
        let url = fresh_database(backend, dir.path()).await;
        let store = Store::open(&url).await.expect("opens");
        {
            let mut tx = store.begin().await.expect("begin");
            tx.insert_org(&org("CERT-PL")).await.expect("insert");
            tx.append_audit(&entry(1)).await.expect("append");
            // Dropped without commit.
        }
        assert!(
            store.org_by_name("CERT-PL").await.expect("read").is_none(),
            "{backend}"
        );
        assert_eq!(
            store.verify_audit().await.expect("verify"),
            AuditVerification::Intact { n_events: 0 }
        );
    }
}

#[tokio::test]
async fn the_audit_chain_names_the_first_altered_removed_or_truncated_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in backends() {
        let cases: &[(&str, i64)] = &[
            (
                "UPDATE audit_events SET action = 'nothing.happened' WHERE seq = 3",
                3,
            ),
            (
                "UPDATE audit_events SET after_json = '{\"name\":\"forged\"}' WHERE seq = 2",
                2,
            ),
            ("DELETE FROM audit_events WHERE seq = 4", 4),
            // Removing the last events and rewinding the head is caught by
            // the head's hash; removing them alone by its count.
            ("DELETE FROM audit_events WHERE seq = 5", 5),
        ];
        for (sql, first_broken) in cases {
            let url = fresh_database(backend, dir.path()).await;
            let store = store_with_events(&url, 5).await;
            assert_eq!(
                store.verify_audit().await.expect("verify"),
                AuditVerification::Intact { n_events: 5 }
            );
            tamper(&url, sql).await;
            match store.verify_audit().await.expect("verify") {
                AuditVerification::Broken { seq, problem } => {
                    assert_eq!(seq, *first_broken, "{backend}: {sql}: {problem}");
                }
                intact => panic!("{backend}: {sql} went unnoticed: {intact:?}"),
            }
        }
    }
}

#[tokio::test]
async fn concurrent_appends_keep_one_unbroken_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in backends() {
        let url = fresh_database(backend, dir.path()).await;
        let store = Store::open(&url).await.expect("opens");
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                tx.append_audit(&entry(i)).await.expect("append");
                tx.commit().await.expect("commit");
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(
            store.verify_audit().await.expect("verify"),
            AuditVerification::Intact { n_events: 16 },
            "{backend}"
        );
    }
}
