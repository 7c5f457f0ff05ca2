//! Indicators over real HTTP: TLP 2.0 walked level by level against every
//! role and organisation on every read path (list, search, filter, count,
//! one by id, STIX export, MISP export, the web page), and bad input
//! (pasted lists, CSV, STIX, MISP) refused or contained.

mod common;

use std::collections::BTreeMap;

use common::*;
use crrt_platform::{NewOrg, NewUser, OrgKind, Role, Skill};
use crrt_store::testing::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Viewers in the order of the expectations below.
const VIEWERS: [&str; 7] = [
    "admin",
    "coordinator",
    "responder",
    "member2",
    "partner",
    "requester",
    "other_requester",
];

/// Adds a second member-state team with one responder ("member2").
async fn second_member(f: &mut Fixture) {
    f.platform
        .create_org(
            None,
            NewOrg {
                name: "CERT-EE".into(),
                kind: OrgKind::Member,
                country: "EE".into(),
            },
        )
        .await
        .expect("org");
    f.platform
        .create_user(
            None,
            NewUser {
                email: "member2@example.org".into(),
                display_name: None,
                org: "CERT-EE".into(),
                role: Role::Responder,
                password: Some(PASSWORD.into()),
                skills: vec![Skill::Forensics],
                languages: vec!["en".into()],
                availability: Vec::new(),
            },
        )
        .await
        .expect("user");
    let token = f
        .platform
        .create_token(None, "member2@example.org", "tests")
        .await
        .expect("token");
    f.tokens.insert("member2", token.secret);
}

#[tokio::test]
async fn tlp_decides_who_sees_an_indicator_on_every_read_path() {
    for backend in backends() {
        let mut f = Fixture::start(backend).await;
        second_member(&mut f).await;
        // The responder of NCSC-LT shares one indicator per level.
        let levels: [(&str, &str, Value, [bool; 7]); 5] = [
            ("clear", "clear.example", json!({}), [true; 7]),
            (
                "green",
                "green.example",
                json!({}),
                [true, true, true, true, true, false, false],
            ),
            (
                "amber",
                "amber.example",
                json!({"recipient_orgs": ["Vendor"]}),
                [true, true, true, false, true, false, false],
            ),
            (
                "amber+strict",
                "amberstrict.example",
                json!({}),
                [true, true, true, false, false, false, false],
            ),
            (
                "red",
                "red.example",
                json!({"recipient_users": ["coordinator@example.org"]}),
                [false, true, true, false, false, false, false],
            ),
        ];
        let mut ids = BTreeMap::new();
        for (tlp, value, extra, _) in &levels {
            let mut body =
                json!({"value": value, "tlp": tlp, "tags": ["T1485", "malware:WhisperGate"]});
            for (k, v) in extra.as_object().expect("object") {
                body[k] = v.clone();
            }
            let (status, created) = f
                .call("responder", Method::POST, "/api/v1/indicators", Some(body))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{backend} {tlp}: {created}");
            ids.insert(*tlp, created["id"].as_str().expect("id").to_owned());
        }
        for (v, viewer) in VIEWERS.iter().enumerate() {
            let (_, list) = f
                .call(viewer, Method::GET, "/api/v1/indicators?limit=500", None)
                .await;
            let listed: Vec<&str> = list["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|i| i["value"].as_str())
                .collect();
            let (_, count) = f
                .call(viewer, Method::GET, "/api/v1/indicators/count", None)
                .await;
            let (_, stix) = f
                .call(viewer, Method::GET, "/api/v1/indicators/export", None)
                .await;
            let stix = stix.to_string();
            let (_, misp) = f
                .call(
                    viewer,
                    Method::GET,
                    "/api/v1/indicators/export?format=misp",
                    None,
                )
                .await;
            let misp = misp.to_string();
            let mut expected_count = 0;
            for (tlp, value, _, visible) in &levels {
                let sees = visible[v];
                expected_count += i64::from(sees);
                let at = format!("{backend}: {viewer} on TLP:{tlp}");
                assert_eq!(listed.contains(value), sees, "{at}: list");
                let (status, _) = f
                    .call(
                        viewer,
                        Method::GET,
                        &format!("/api/v1/indicators/{}", ids[tlp]),
                        None,
                    )
                    .await;
                let want = if sees {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                assert_eq!(status, want, "{at}: by id");
                let search = value.split('.').next().expect("label");
                let (_, found) = f
                    .call(
                        viewer,
                        Method::GET,
                        &format!("/api/v1/indicators?q={}", search.to_uppercase()),
                        None,
                    )
                    .await;
                let found = found["items"].as_array().expect("items").len();
                assert_eq!(found > 0, sees, "{at}: search");
                let (_, by_level) = f
                    .call(
                        viewer,
                        Method::GET,
                        &format!("/api/v1/indicators/count?tlp={}", tlp.replace('+', "%2B")),
                        None,
                    )
                    .await;
                assert_eq!(
                    by_level["count"],
                    json!(i64::from(sees)),
                    "{at}: count by level"
                );
                assert_eq!(stix.contains(value), sees, "{at}: STIX export");
                assert_eq!(misp.contains(value), sees, "{at}: MISP export");
            }
            assert_eq!(
                count["count"],
                json!(expected_count),
                "{backend}: {viewer} count"
            );
        }
        let (status, _) = f
            .call("anonymous", Method::GET, "/api/v1/indicators", None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Recipients are the source's business only.
        let (_, seen_by_partner) = f
            .call(
                "partner",
                Method::GET,
                &format!("/api/v1/indicators/{}", ids["amber"]),
                None,
            )
            .await;
        assert_eq!(seen_by_partner["recipient_orgs"], json!([]));
        let (_, seen_by_source) = f
            .call(
                "coordinator",
                Method::GET,
                &format!("/api/v1/indicators/{}", ids["amber"]),
                None,
            )
            .await;
        assert_eq!(seen_by_source["recipient_orgs"], json!(["Vendor"]));

        // Raising the level takes it away at once; only the source may.
        let (status, _) = f
            .call(
                "partner",
                Method::POST,
                &format!("/api/v1/indicators/{}", ids["green"]),
                Some(json!({"version": 1, "tlp": "clear"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend}: not the source");
        let (status, _) = f
            .call(
                "coordinator",
                Method::POST,
                &format!("/api/v1/indicators/{}", ids["green"]),
                Some(json!({"version": 1, "tlp": "amber+strict"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = f
            .call(
                "partner",
                Method::GET,
                &format!("/api/v1/indicators/{}", ids["green"]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: no longer shared");
    }
}

#[tokio::test]
async fn the_web_page_lists_only_what_tlp_allows() {
    let mut f = Fixture::start("sqlite").await;
    second_member(&mut f).await;
    for (value, tlp) in [
        ("seen-by-all.example", "clear"),
        ("lt-only.example", "amber+strict"),
    ] {
        let (status, _) = f
            .call(
                "responder",
                Method::POST,
                "/api/v1/indicators",
                Some(json!({"value": value, "tlp": tlp})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let client = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (email, sees_amber) in [
        ("coordinator@example.org", true),
        ("member2@example.org", false),
    ] {
        let response = client
            .post(format!("{}/signin", f.base))
            .form(&[("email", email), ("password", PASSWORD)])
            .send()
            .await
            .expect("HTTP");
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("crrt_session="))
            .expect("cookie")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();
        let page = client
            .get(format!("{}/indicators", f.base))
            .header("cookie", cookie)
            .send()
            .await
            .expect("HTTP")
            .text()
            .await
            .expect("body");
        assert!(page.contains("seen-by-all.example"), "{email}");
        assert_eq!(page.contains("lt-only.example"), sees_amber, "{email}");
    }
}

#[tokio::test]
async fn batches_are_all_or_none_or_report_what_they_skipped() {
    let f = Fixture::start("sqlite").await;
    let import = |format: &str, body: &str| {
        let request = f
            .client
            .post(format!(
                "{}/api/v1/indicators/import?format={format}&tlp=amber&tags=wiper,T1485",
                f.base
            ))
            .bearer_auth(&f.tokens["responder"])
            .body(body.to_owned());
        async move {
            let response = request.send().await.expect("HTTP");
            let status = response.status();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    let count = || async {
        f.call("responder", Method::GET, "/api/v1/indicators/count", None)
            .await
            .1["count"]
            .as_i64()
            .expect("count")
    };

    // A pasted list with one bad line stores nothing and names the line.
    let (status, report) = import(
        "text",
        "185.61.137[.]4\nhxxp://evil[.]example/x\n# a comment\nnot a value\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{report}");
    assert_eq!(report["refused"], json!(true));
    assert_eq!(report["problems"][0]["position"], json!("line 4"));
    assert_eq!(count().await, 0, "nothing half-written");
    let (status, report) = import(
        "text",
        "185.61.137[.]4\nhxxp://evil[.]example/x\nmutex:Global\\WG\n185.61.137.4\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["imported"],
        json!(3),
        "duplicates in one paste are one"
    );
    // Sending it again adds nothing.
    let (_, report) = import("text", "185.61.137.4\n").await;
    assert_eq!(
        (report["imported"].clone(), report["already_known"].clone()),
        (json!(0), json!(1))
    );

    // CSV: one bad row refuses the file.
    let (status, report) = import("csv", "value,tlp\nok.example,green\nbad.example,purple\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(report["problems"][0]["position"], json!("line 3"));
    assert_eq!(count().await, 3);

    // STIX: the valid rest comes in, the rest is listed.
    let bundle = json!({"type": "bundle", "id": "bundle--0d2a1f52-7d1c-4f0e-9a4b-3b2c1d0e9f8a", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--1d2a1f52-7d1c-4f0e-9a4b-3b2c1d0e9f8a",
         "pattern_type": "stix", "pattern": "[domain-name:value = 'c2.partner.example']",
         "object_marking_refs": ["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"]},
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--2d2a1f52-7d1c-4f0e-9a4b-3b2c1d0e9f8a",
         "pattern_type": "stix", "pattern": "[file:size > 10]"}
    ]});
    let (status, report) = import("stix", &bundle.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], json!(1));
    assert_eq!(report["problems"][0]["position"], json!("objects[1]"));
    let (_, found) = f
        .call(
            "responder",
            Method::GET,
            "/api/v1/indicators?q=c2.partner",
            None,
        )
        .await;
    assert_eq!(
        found["items"][0]["tlp"],
        json!("red"),
        "the marking is kept"
    );
    let (status, _) = import("stix", "{\"type\": \"bundle\", \"objects\": [").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "damaged JSON");

    // MISP with a tlp tag per attribute.
    let event = json!({"Event": {"info": "x", "Tag": [{"name": "tlp:green"}], "Attribute": [
        {"type": "sha256", "value": "a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92"},
        {"type": "ip-dst", "value": "999.1.1.1"},
        {"type": "text", "value": "a comment, not an indicator"}
    ]}});
    let (status, report) = import("misp", &event.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], json!(1));
    assert_eq!(report["problems"][0]["position"], json!("Attribute[1]"));

    // Single entries: wrong level, recipients that do not apply, duplicates.
    for (body, code) in [
        (
            json!({"value": "x.example", "tlp": "purple"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"value": "x.example", "tlp": "green", "recipient_orgs": ["Vendor"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"value": "x.example", "tlp": "red", "recipient_users": ["nobody@example.org"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"value": "185.61.137.4", "tlp": "amber"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"value": "x.example", "tlp": "amber", "case_id": "nope"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"value": "x.example", "tlp": "amber", "confidence": 101}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = f
            .call(
                "responder",
                Method::POST,
                "/api/v1/indicators",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, code, "{body}: {answer}");
    }
}

#[tokio::test]
async fn a_findings_value_is_promoted_to_an_indicator_on_its_case() {
    let f = Fixture::start("sqlite").await;
    let case = f.case().await;
    let line = r#"{"timestamp":"2022-02-23T16:00:00Z","host":"DC01","channel":"Security","event_id":4688,"record_id":7,"rule_id":null,"rule_title":"Whoami","level":"medium","tags":[],"evidence_file":"dc01.evtx","event":{"CommandLine":"whoami","IpAddress":"185.61.137.4"}}"#;
    let coordinator = f.actor("coordinator").await;
    f.platform
        .import_findings(&coordinator, &case.case.id, line)
        .await
        .expect("imported");
    let finding = f
        .platform
        .findings(
            &coordinator,
            &case.case.id,
            crrt_platform::Page {
                limit: 1,
                offset: 0,
            },
        )
        .await
        .expect("findings")
        .remove(0);
    let path = format!("/api/v1/findings/{}/promote", finding.id);
    let (status, _) = f
        .call(
            "other_requester",
            Method::POST,
            &path,
            Some(json!({"value": "185.61.137.4", "tlp": "amber"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, indicator) = f
        .call(
            "coordinator",
            Method::POST,
            &path,
            Some(json!({"value": "185.61.137.4", "tlp": "amber"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{indicator}");
    assert_eq!(indicator["kind"], json!("ipv4"));
    assert_eq!(indicator["links"][0]["case_id"], json!(case.case.id));
    assert!(
        indicator["description"]
            .as_str()
            .is_some_and(|d| d.contains("dc01.evtx")),
        "{indicator}"
    );
    let (_, on_case) = f
        .call(
            "coordinator",
            Method::GET,
            &format!("/api/v1/indicators?case={}", case.case.id),
            None,
        )
        .await;
    assert_eq!(on_case["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_hunt_with_the_cases_indicators_records_sightings_once() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let case = f.case().await;
        let events = r#"{"winlog": {"channel": "Security", "event_id": 4624, "computer_name": "DC01", "record_id": 7, "event_data": {"IpAddress": "185.61.137.4", "TargetUserName": "backup"}}, "@timestamp": "2022-02-23T16:00:00Z"}"#;
        let response = f
            .client
            .post(format!(
                "{}/api/v1/cases/{}/evidence?name=dc01.jsonl",
                f.base, case.case.id
            ))
            .bearer_auth(&f.tokens["coordinator"])
            .body(events)
            .send()
            .await
            .expect("HTTP");
        assert_eq!(response.status(), StatusCode::CREATED);
        let (status, indicator) = f
            .call(
                "coordinator",
                Method::POST,
                "/api/v1/indicators",
                Some(json!({"value": "185.61.137[.]4", "tlp": "amber", "case_id": case.case.id})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{indicator}");
        let id = indicator["id"].as_str().expect("id").to_owned();
        let hunts = format!("/api/v1/cases/{}/hunts", case.case.id);
        for round in 0..2 {
            let (status, hunt) = f
                .call(
                    "coordinator",
                    Method::POST,
                    &hunts,
                    Some(json!({"indicators": true})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{backend}: {hunt}");
            let hunt_id = hunt["id"].as_str().expect("id").to_owned();
            let done = f.finished_hunt("coordinator", &hunt_id).await;
            assert_eq!(done["status"], json!("done"), "{backend}: {done}");
            assert_eq!(done["n_findings"], json!(if round == 0 { 1 } else { 0 }));
            let (_, seen) = f
                .call(
                    "coordinator",
                    Method::GET,
                    &format!("/api/v1/indicators/{id}"),
                    None,
                )
                .await;
            assert_eq!(
                seen["sightings"],
                json!(1),
                "{backend} round {round}: counted once"
            );
        }
        let (_, findings) = f
            .call(
                "coordinator",
                Method::GET,
                &format!("/api/v1/cases/{}/findings", case.case.id),
                None,
            )
            .await;
        assert_eq!(
            findings["items"][0]["rule_id"],
            json!(format!("indicator:{id}"))
        );
        assert!(
            findings["items"][0]["rule_title"]
                .as_str()
                .is_some_and(|t| t.contains("185.61.137.4")),
            "{findings}"
        );
        // The ministry may not see this TLP:AMBER indicator (not addressed
        // to it): its findings, timeline and reports name neither the
        // indicator nor its value; the event from its own logs stays.
        let (_, theirs) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/cases/{}/findings", case.case.id),
                None,
            )
            .await;
        let withheld = &theirs["items"][0];
        assert_eq!(withheld["rule_id"], json!("indicator:withheld"), "{theirs}");
        assert_eq!(withheld["tags"], json!(["indicator"]));
        assert!(!withheld["rule_title"].to_string().contains("185.61.137"));
        assert_eq!(withheld["event"]["IpAddress"], json!("185.61.137.4"));
        let (_, timeline) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/cases/{}/timeline", case.case.id),
                None,
            )
            .await;
        assert!(!timeline.to_string().contains("185.61.137"), "{timeline}");
        assert!(!timeline.to_string().contains(&id), "{timeline}");
        let mission = case.case.mission_id.clone();
        let report = f
            .client
            .get(format!(
                "{}/api/v1/missions/{mission}/reports/final?format=md",
                f.base
            ))
            .bearer_auth(&f.tokens["requester"])
            .send()
            .await
            .expect("HTTP")
            .text()
            .await
            .expect("body");
        assert!(report.contains("withheld"), "{report}");
        assert!(!report.contains("185.61.137"), "{report}");
        // Without rule packs and without indicators there is nothing to hunt with.
        let (status, _) = f
            .call("coordinator", Method::POST, &hunts, Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[tokio::test]
async fn administrators_manage_standing_pulls_on_the_sharing_page() {
    let f = Fixture::start("sqlite").await;
    let client = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let sign_in = |email: &'static str| {
        let client = client.clone();
        let base = f.base.clone();
        async move {
            let response = client
                .post(format!("{base}/signin"))
                .form(&[("email", email), ("password", PASSWORD)])
                .send()
                .await
                .expect("HTTP");
            response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("crrt_session="))
                .expect("cookie")
                .split(';')
                .next()
                .expect("pair")
                .to_owned()
        }
    };
    let page = |cookie: String| {
        let client = client.clone();
        let base = f.base.clone();
        async move {
            client
                .get(format!("{base}/sharing"))
                .header("cookie", cookie)
                .send()
                .await
                .expect("HTTP")
                .text()
                .await
                .expect("body")
        }
    };
    let partner = sign_in("partner@example.org").await;
    let seen = page(partner.clone()).await;
    assert!(
        seen.contains("/taxii2/crrt/"),
        "partners see how to connect"
    );
    assert!(
        !seen.contains("Pulling from partners"),
        "but not the subscriptions"
    );

    let admin = sign_in("admin@example.org").await;
    let seen = page(admin.clone()).await;
    let marker = "name=\"_csrf\" value=\"";
    let at = seen.find(marker).expect("csrf") + marker.len();
    let csrf = seen[at..at + 32].to_owned();
    for (url, every, ca, ok) in [
        (
            "ftp://taxii.vendor.example/taxii2/x/collections/y/",
            "900",
            "",
            false,
        ),
        (
            "http://taxii.vendor.example/taxii2/x/collections/y/",
            "5",
            "",
            false,
        ),
        (
            "https://taxii.vendor.example/taxii2/x/collections/y/",
            "900",
            "not a certificate",
            false,
        ),
        (
            "http://taxii.vendor.example/taxii2/x/collections/y/",
            "900",
            "",
            true,
        ),
    ] {
        let response = client
            .post(format!("{}/sharing/subscriptions", f.base))
            .header("cookie", &admin)
            .form(&[
                ("_csrf", csrf.as_str()),
                ("url", url),
                ("source", "Vendor"),
                ("token", "secret-token"),
                ("every", every),
                ("ca_pem", ca),
            ])
            .send()
            .await
            .expect("HTTP");
        let flash = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("crrt_flash="))
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            flash.starts_with("crrt_flash=ok"),
            ok,
            "{url} every {every}: {flash}"
        );
    }
    let seen = page(admin).await;
    assert!(seen.contains("http://taxii.vendor.example/taxii2/x/collections/y/"));
    assert!(
        !seen.contains("secret-token"),
        "the credential is never shown"
    );

    // Kept sealed: the database holds no trace of it; the platform, with
    // its key, reads it back for the pull.
    let stored = f.platform.store().subscriptions().await.expect("stored");
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].auth.starts_with("sealed:v1:"),
        "{}",
        stored[0].auth
    );
    assert!(!stored[0].auth.contains("secret-token"));
    assert_eq!(
        f.platform.subscription_auth(&stored[0]).expect("opens"),
        "bearer secret-token"
    );
    assert!(stored[0].ca_pem.is_none());
}
