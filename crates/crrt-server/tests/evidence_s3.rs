//! Evidence kept in an S3-compatible object store: a real S3 server (moto's,
//! from PyPI) on loopback, the platform's real HTTP API in front. Uploads,
//! downloads, hunts, verification and broken uploads behave as with the
//! local folder, and the bucket never holds a partial object.

mod common;

use std::process::{Child, Command};

use common::Fixture;
use crrt_platform::EvidenceStore;
use crrt_store::testing::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// moto's S3 server on a free loopback port, stopped when dropped.
struct S3 {
    child: Child,
    endpoint: String,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    /// `None` (with a note) when moto is not installed; CI installs it.
    fn start() -> Option<S3> {
        let (child, port) = common::loopback_service(
            Command::new("moto_server").arg("--help"),
            "S3 evidence tests (pip install 'moto[server]')",
            |port| {
                let mut command = Command::new("moto_server");
                command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                command
            },
        )?;
        Some(S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    fn options(&self) -> [(&str, &str); 5] {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_access_key_id", "testing"),
            ("aws_secret_access_key", "testing"),
            ("aws_region", "eu-central-1"),
            ("aws_allow_http", "true"),
        ]
    }

    /// Runs boto3 (which moto brings) against the server: the test looks
    /// into, and tampers with, the bucket as anyone holding its keys could.
    fn boto(&self, code: &str) -> String {
        let prelude = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='testing', aws_secret_access_key='testing', region_name='eu-central-1')\n",
            self.endpoint
        );
        let output = Command::new("python3")
            .args(["-c", &format!("{prelude}{code}")])
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    fn create_bucket(&self, bucket: &str) {
        self.boto(&format!(
            "s3.create_bucket(Bucket='{bucket}', CreateBucketConfiguration={{'LocationConstraint': 'eu-central-1'}})"
        ));
    }

    /// The keys in the bucket, sorted.
    fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .boto(&format!(
                "for o in s3.list_objects_v2(Bucket='{bucket}').get('Contents', []): print(o['Key'])"
            ))
            .lines()
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    fn put(&self, bucket: &str, key: &str, body: &str) {
        self.boto(&format!(
            "s3.put_object(Bucket='{bucket}', Key='{key}', Body=b'{body}')"
        ));
    }

    fn delete(&self, bucket: &str, key: &str) {
        self.boto(&format!("s3.delete_object(Bucket='{bucket}', Key='{key}')"));
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn upload(f: &Fixture, case: &str, name: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = f
        .client
        .post(format!(
            "{}/api/v1/cases/{case}/evidence?name={name}",
            f.base
        ))
        .bearer_auth(&f.tokens["requester"])
        .body(body)
        .send()
        .await
        .expect("HTTP");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn evidence_in_an_s3_bucket_is_uploaded_hunted_downloaded_and_verified() {
    let Some(s3) = S3::start() else {
        return;
    };
    for backend in backends() {
        let bucket = format!("evidence-{backend}");
        s3.create_bucket(&bucket);
        let work = tempfile::tempdir().expect("work folder");
        let store = EvidenceStore::open_objects(
            &format!("s3://{bucket}/kyiv"),
            &s3.options(),
            work.path(),
            64 << 20,
        )
        .await
        .expect("the bucket answers");
        assert!(store.describe().starts_with(&format!("s3://{bucket}/kyiv")));
        let f = Fixture::start_with(backend, Some(store)).await;
        let case = f.case().await;
        let case_id = case.case.id.as_str();

        // Small: one PUT. Large (20 MiB, over the 8 MiB part size): multipart.
        let events = concat!(
            r#"{"winlog": {"channel": "Security", "event_id": 4688, "computer_name": "DC01", "record_id": 7, "event_data": {"CommandLine": "whoami /all"}}, "@timestamp": "2022-02-23T16:00:00Z"}"#,
            "\n"
        )
        .as_bytes()
        .to_vec();
        let (status, small) = upload(&f, case_id, "dc01.jsonl", events.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {small}");
        assert_eq!(small["sha256"], json!(sha256_hex(&events)));
        let large: Vec<u8> = (0..20u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let (status, big) = upload(&f, case_id, "memory.raw", large.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {big}");
        let keys = s3.keys(&bucket);
        let mut expected = vec![
            format!("kyiv/{}/{}", &sha256_hex(&events)[..2], sha256_hex(&events)),
            format!("kyiv/{}/{}", &sha256_hex(&large)[..2], sha256_hex(&large)),
        ];
        expected.sort();
        assert_eq!(keys, expected, "{backend}: stored under their hashes");

        // Downloads stream from the bucket, byte for byte.
        let response = f.download("coordinator", &big).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["x-content-sha256"].to_str().ok(),
            Some(sha256_hex(&large).as_str())
        );
        let body = response.bytes().await.expect("body");
        assert!(body.as_ref() == large.as_slice(), "{backend}: download");
        let (status, _) = f
            .call(
                "other_requester",
                Method::GET,
                &format!(
                    "/api/v1/evidence/{}/content",
                    small["id"].as_str().expect("id")
                ),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "outsiders see nothing");

        // Same content again: refused, nothing new in the bucket.
        let (status, _) = upload(&f, case_id, "again.jsonl", events.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT);

        // A client that promises 1 MB, sends 64 kB and hangs up.
        let address = f.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        let head = format!(
            "POST /api/v1/cases/{case_id}/evidence?name=cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n",
            f.tokens["requester"]
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.write_all(&[7u8; 65_536]).await.expect("write");
        drop(stream);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(s3.keys(&bucket).len(), 2, "{backend}: no partial object");
        let (_, listed) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/cases/{case_id}/evidence"),
                None,
            )
            .await;
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(2));

        // A hunt reads the evidence from the bucket; its copies go after.
        let rule = "title: Whoami\nid: 11111111-2222-3333-4444-555555555555\nlogsource: {category: process_creation, product: windows}\nlevel: medium\ndetection:\n  sel: {CommandLine|contains: whoami}\n  condition: sel\n";
        let pack: Value = f
            .client
            .post(format!("{}/api/v1/rulepacks?name=whoami", f.base))
            .bearer_auth(&f.tokens["coordinator"])
            .body(rule)
            .send()
            .await
            .expect("HTTP")
            .json()
            .await
            .expect("JSON");
        let hunts = format!("/api/v1/cases/{case_id}/hunts");
        let (status, hunt) = f
            .call(
                "coordinator",
                Method::POST,
                &hunts,
                Some(json!({"rulepacks": [pack["id"]]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hunt}");
        let hunt = f
            .finished_hunt("coordinator", hunt["id"].as_str().expect("id"))
            .await;
        assert_eq!(hunt["status"], json!("done"), "{backend}: {hunt}");
        assert_eq!(hunt["n_findings"], json!(1));
        let (_, findings) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/cases/{case_id}/findings"),
                None,
            )
            .await;
        assert_eq!(findings["items"][0]["evidence_file"], json!("dc01.jsonl"));
        assert_eq!(findings["items"][0]["evidence_id"], small["id"]);
        let leftovers = std::fs::read_dir(work.path().join(".hunting"))
            .expect("hunting folder")
            .count();
        assert_eq!(leftovers, 0, "{backend}: the hunt's copies are removed");

        // Verification re-reads the bucket and names what an intruder changed.
        let (checked, problems) = f.platform.verify_evidence().await.expect("verify");
        assert_eq!((checked, problems.len()), (2, 0), "{backend}: {problems:?}");
        let key = format!("kyiv/{}/{}", &sha256_hex(&events)[..2], sha256_hex(&events));
        s3.put(&bucket, &key, "wiped");
        let (_, problems) = f.platform.verify_evidence().await.expect("verify");
        assert_eq!(problems.len(), 1, "{backend}: {problems:?}");
        assert_eq!(problems[0].0, sha256_hex(&events));
        assert!(
            problems[0].1.contains(&sha256_hex(b"wiped")),
            "{}",
            problems[0].1
        );
        // ...and a hunt over changed evidence fails saying so, with no findings.
        let (_, hunt) = f
            .call(
                "coordinator",
                Method::POST,
                &hunts,
                Some(json!({"rulepacks": [pack["id"]]})),
            )
            .await;
        let hunt = f
            .finished_hunt("coordinator", hunt["id"].as_str().expect("id"))
            .await;
        assert_eq!(hunt["status"], json!("failed"), "{backend}: {hunt}");
        assert!(
            hunt["error"].as_str().unwrap_or("").contains("has changed"),
            "{hunt}"
        );
        // A missing object is named too.
        s3.delete(&bucket, &key);
        let (_, problems) = f.platform.verify_evidence().await.expect("verify");
        assert_eq!(problems.len(), 1, "{backend}: {problems:?}");
        let response = f.download("coordinator", &small).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = response.text().await.expect("body");
        assert!(text.contains("verify-evidence"), "{text}");
    }
}

#[tokio::test]
async fn a_misconfigured_store_is_refused_at_start_with_its_reason() {
    let work = tempfile::tempdir().expect("work folder");
    let error = EvidenceStore::open_objects("gs://bucket/x", &[], work.path(), 1 << 20)
        .await
        .expect_err("not S3");
    assert!(error.to_string().contains("s3://"), "{error}");
    let Some(s3) = S3::start() else {
        return;
    };
    let error = EvidenceStore::open_objects("s3://no-such-bucket/x", &s3.options(), work.path(), 1)
        .await
        .expect_err("no bucket");
    assert!(
        error.to_string().contains("s3://no-such-bucket/x"),
        "{error}"
    );
    let error = EvidenceStore::open_objects(
        "s3://bucket/x",
        &[("aws_no_such_option", "1")],
        work.path(),
        1,
    )
    .await
    .expect_err("unknown option");
    assert!(error.to_string().contains("aws_no_such_option"), "{error}");
}
