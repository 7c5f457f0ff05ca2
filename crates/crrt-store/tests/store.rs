//! The store on both engines: schema, uniqueness, optimistic versions and
//! the audit chain, including an attacker editing rows behind its back.

use crrt_store::testing::{backends, fresh_database, tamper};
use crrt_store::{
    AuditEntry, AuditVerification, Organisation, Partition, Store, StoreError, TaxiiFilter,
    TaxiiObject, VersionMatch,
};

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

fn taxii_object(id: &str, version: &str, added: &str) -> (TaxiiObject, String) {
    (
        TaxiiObject {
            id: id.into(),
            version: version.into(),
            date_added: added.into(),
            spec_version: "2.1".into(),
            object: format!(r#"{{"id":"{id}","modified":"{version}"}}"#),
        },
        "indicator".into(),
    )
}

/// The inboxes of the two organisations the TAXII tests use.
const EE: Partition<'static> = Partition {
    collection: "inbox",
    org_id: "id-CERT-EE",
};
const LT: Partition<'static> = Partition {
    collection: "inbox",
    org_id: "id-CERT-LT",
};

/// Every version of every object.
fn all_versions() -> TaxiiFilter {
    TaxiiFilter {
        versions: VersionMatch {
            all: true,
            ..VersionMatch::default()
        },
        ..TaxiiFilter::default()
    }
}

/// A fresh store on `backend` holding these organisations.
async fn store_with_orgs(backend: &str, dir: &std::path::Path, names: &[&str]) -> (String, Store) {
    let url = fresh_database(backend, dir).await;
    let store = Store::open(&url).await.expect("opens");
    let mut tx = store.begin().await.expect("begin");
    for name in names {
        tx.insert_org(&org(name)).await.expect("org");
    }
    tx.commit().await.expect("commit");
    (url, store)
}

async fn inbox_ids(store: &Store, at: Partition<'_>, filter: &TaxiiFilter) -> Vec<String> {
    store
        .taxii_objects(at, filter, 100)
        .await
        .expect("reads")
        .into_iter()
        .map(|o| format!("{}@{}", o.id, o.version))
        .collect()
}

/// Object versions are added once however often they are sent (also twice
/// in one envelope), other partitions never see them, and reads by id,
/// version and deletion find them through the hashed key.
#[tokio::test]
async fn taxii_objects_are_added_once_and_found_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in backends() {
        let (_, store) = store_with_orgs(backend, dir.path(), &["CERT-EE", "CERT-LT"]).await;
        let (ee, lt) = (EE, LT);
        let a = "indicator--a0000000-0000-4000-8000-000000000000";
        let b = "indicator--b0000000-0000-4000-8000-000000000000";
        let first = [
            taxii_object(a, "2022-02-24T06:00:00.000Z", "2022-02-24T07:00:00.000001Z"),
            taxii_object(b, "2022-02-24T06:00:00.000Z", "2022-02-24T07:00:00.000002Z"),
            taxii_object(a, "2022-02-24T06:00:00.000Z", "2022-02-24T07:00:00.000003Z"),
        ];
        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.add_taxii_objects(ee, &first).await.expect("adds"),
            2,
            "{backend}"
        );
        tx.commit().await.expect("commit");
        let again = [
            taxii_object(a, "2022-02-24T06:00:00.000Z", "2022-02-24T08:00:00.000001Z"),
            taxii_object(a, "2022-02-25T06:00:00.000Z", "2022-02-24T08:00:00.000002Z"),
        ];
        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.add_taxii_objects(ee, &again).await.expect("adds"),
            1,
            "{backend}"
        );
        tx.commit().await.expect("commit");

        let all = all_versions();
        assert_eq!(
            inbox_ids(&store, ee, &all).await,
            [
                format!("{a}@2022-02-24T06:00:00.000Z"),
                format!("{b}@2022-02-24T06:00:00.000Z"),
                format!("{a}@2022-02-25T06:00:00.000Z"),
            ],
            "{backend}"
        );
        assert!(inbox_ids(&store, lt, &all).await.is_empty(), "{backend}");
        let by_id = TaxiiFilter {
            ids: vec![a.into()],
            ..TaxiiFilter::default()
        };
        assert_eq!(
            inbox_ids(&store, ee, &by_id).await,
            [format!("{a}@2022-02-25T06:00:00.000Z")],
            "latest version by default, {backend}"
        );
        assert_eq!(
            store.taxii_versions(ee, a).await.expect("versions").len(),
            2
        );
        assert!(
            store
                .taxii_versions(lt, a)
                .await
                .expect("versions")
                .is_empty()
        );

        let mut tx = store.begin().await.expect("begin");
        assert_eq!(
            tx.delete_taxii_object(lt, a, &all).await.expect("deletes"),
            0
        );
        assert_eq!(
            tx.delete_taxii_object(ee, a, &all).await.expect("deletes"),
            2
        );
        tx.commit().await.expect("commit");
        assert_eq!(
            inbox_ids(&store, ee, &all).await,
            [format!("{b}@2022-02-24T06:00:00.000Z")],
            "{backend}"
        );
    }
}

/// A database whose TAXII objects were stored before they had keys
/// (schema 18) opens with every object version still there and findable.
#[tokio::test]
async fn taxii_objects_stored_before_keys_are_rekeyed_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in backends() {
        let (url, store) = store_with_orgs(backend, dir.path(), &["CERT-EE"]).await;
        store.close().await;
        // Back to the table of schema 18, holding 1,203 object versions
        // (more than one page of the copy).
        let mut rows = Vec::new();
        for n in 0..1203 {
            let version = if n % 2 == 1 {
                "2022-02-25T06:00:00.000Z"
            } else {
                "2022-02-24T06:00:00.000Z"
            };
            let id = format!(
                "indicator--{:08x}-0000-4000-8000-000000000000",
                n / 2 * 7919
            );
            rows.push(format!(
                "('inbox', 'id-CERT-EE', '{id}', '{version}', '2022-02-24T07:00:00.{n:06}Z', \
                 'indicator', '2.1', '{{}}')"
            ));
        }
        tamper(
            &url,
            &format!(
                "DROP TABLE taxii_objects;
                 CREATE TABLE taxii_objects (
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
                 INSERT INTO taxii_objects VALUES {};
                 DELETE FROM crrt_schema WHERE version = 19;",
                rows.join(", ")
            ),
        )
        .await;
        let store = Store::open(&url).await.expect("reopens and migrates");
        let ee = EE;
        let mut filter = all_versions();
        let mut seen = 0;
        loop {
            let page = store.taxii_objects(ee, &filter, 500).await.expect("reads");
            let Some(last) = page.last() else { break };
            seen += page.len();
            filter.after = Some((
                last.date_added.clone(),
                last.id.clone(),
                last.version.clone(),
            ));
        }
        assert_eq!(seen, 1203, "{backend}");
        let id = format!("indicator--{:08x}-0000-4000-8000-000000000000", 50 * 7919);
        assert_eq!(
            store.taxii_versions(ee, &id).await.expect("versions").len(),
            2,
            "{backend}"
        );
        let mut tx = store.begin().await.expect("begin");
        let same = [taxii_object(
            &id,
            "2022-02-25T06:00:00.000Z",
            "2022-02-26T00:00:00.000000Z",
        )];
        assert_eq!(
            tx.add_taxii_objects(ee, &same).await.expect("adds"),
            0,
            "{backend}"
        );
        tx.commit().await.expect("commit");
    }
}

/// Adds find what is there before inserting (there is no unique index):
/// eight concurrent adds of the same envelope store each version once.
#[tokio::test]
async fn concurrent_adds_of_one_envelope_store_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for backend in backends() {
        let (_, store) = store_with_orgs(backend, dir.path(), &["CERT-EE"]).await;
        let envelope: Vec<(TaxiiObject, String)> = (0..50)
            .map(|n| {
                taxii_object(
                    &format!("indicator--{n:08x}-0000-4000-8000-000000000000"),
                    "2022-02-24T06:00:00.000Z",
                    &format!("2022-02-24T07:00:00.{n:06}Z"),
                )
            })
            .collect();
        let envelope = std::sync::Arc::new(envelope);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (store, envelope) = (store.clone(), std::sync::Arc::clone(&envelope));
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.expect("begin");
                let added = tx.add_taxii_objects(EE, &envelope).await.expect("adds");
                tx.commit().await.expect("commit");
                added
            }));
        }
        let mut added = 0;
        for task in tasks {
            added += task.await.expect("task");
        }
        assert_eq!(added, 50, "{backend}");
        assert_eq!(
            store
                .taxii_objects(EE, &all_versions(), 1000)
                .await
                .expect("reads")
                .len(),
            50,
            "{backend}"
        );
    }
}
