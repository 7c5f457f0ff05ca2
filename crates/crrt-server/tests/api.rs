//! The API over real HTTP on loopback, on SQLite and (when configured)
//! PostgreSQL: every role against every endpoint, sign-in, tokens, bad
//! input, concurrent edits, state machine.

mod common;

use common::*;
use crrt_store::testing::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn request_body() -> Value {
    json!({"summary": "Defacement", "symptoms": "Front page replaced", "urgency": "high", "tlp": "green"})
}

/// Expected status per role, in the order of [`ROLES`].
fn expect(codes: [u16; 7]) -> [StatusCode; 7] {
    codes.map(|c| StatusCode::from_u16(c).expect("status"))
}

#[tokio::test]
async fn every_role_against_every_endpoint() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let n = std::sync::atomic::AtomicU32::new(0);
        let unique = || n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // (method, path or "{request}", body, expected per role)
        type Case = (
            Method,
            &'static str,
            fn(u32) -> Option<Value>,
            [StatusCode; 7],
        );
        let cases: Vec<Case> = vec![
            (
                Method::GET,
                "/api/v1/me",
                |_| None,
                expect([200, 200, 200, 200, 200, 200, 401]),
            ),
            (
                Method::GET,
                "/api/v1/organisations",
                |_| None,
                expect([200, 200, 200, 403, 403, 403, 401]),
            ),
            (
                Method::POST,
                "/api/v1/organisations",
                |i| Some(json!({"name": format!("Org {i}"), "kind": "member", "country": "HR"})),
                expect([201, 403, 403, 403, 403, 403, 401]),
            ),
            (
                Method::GET,
                "/api/v1/users",
                |_| None,
                expect([200, 200, 403, 403, 403, 403, 401]),
            ),
            (
                Method::POST,
                "/api/v1/users",
                |i| {
                    Some(
                        json!({"email": format!("new{i}@example.org"), "org": "NCSC-LT", "role": "responder"}),
                    )
                },
                expect([201, 403, 403, 403, 403, 403, 401]),
            ),
            (
                Method::GET,
                "/api/v1/requests",
                |_| None,
                expect([200, 200, 403, 200, 200, 403, 401]),
            ),
            (
                Method::POST,
                "/api/v1/requests",
                |_| Some(request_body()),
                expect([403, 403, 403, 201, 201, 403, 401]),
            ),
            (
                Method::GET,
                "{request}",
                |_| None,
                expect([200, 200, 404, 200, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{request}/review",
                |_| Some(json!({"version": 1})),
                expect([403, 200, 404, 403, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{request}/withdraw",
                |_| Some(json!({"version": 1})),
                expect([403, 403, 404, 200, 404, 404, 401]),
            ),
            (
                Method::GET,
                "/api/v1/audit",
                |_| None,
                expect([200, 403, 403, 403, 403, 403, 401]),
            ),
            (
                Method::GET,
                "/api/v1/tokens",
                |_| None,
                expect([200, 200, 200, 200, 200, 200, 401]),
            ),
            (
                Method::GET,
                "{request}/council",
                |_| None,
                expect([200, 200, 404, 200, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{reviewed}/council",
                |_| Some(json!({"organisation": "NCSC-LT", "position": "agree"})),
                expect([403, 200, 404, 403, 404, 404, 401]),
            ),
            (
                Method::GET,
                "/api/v1/missions",
                |_| None,
                expect([200, 200, 200, 200, 200, 403, 401]),
            ),
            (
                Method::GET,
                "{mission}",
                |_| None,
                expect([200, 200, 404, 200, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{mission}/checklist",
                |_| Some(json!({"version": 1, "legal_basis": true})),
                expect([403, 200, 404, 403, 404, 404, 401]),
            ),
            (
                Method::GET,
                "{mission}/proposal",
                |_| None,
                expect([403, 200, 404, 403, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{mission}/status",
                |_| Some(json!({"version": 1, "status": "demobilised"})),
                expect([403, 409, 404, 403, 404, 404, 401]),
            ),
            (
                Method::POST,
                "/api/v1/me",
                |_| Some(json!({"version": 1, "languages": ["en", "uk"]})),
                expect([200, 200, 200, 200, 200, 200, 401]),
            ),
            (
                Method::POST,
                "{user}",
                |_| Some(json!({"disabled": false})),
                expect([200, 403, 403, 403, 403, 403, 401]),
            ),
            (
                Method::POST,
                "/api/v1/tokens",
                |i| Some(json!({"name": format!("script {i}")})),
                expect([201, 201, 201, 201, 201, 201, 401]),
            ),
            (
                Method::POST,
                "{reviewed}/decision",
                |_| Some(json!({"version": 2, "outcome": "decline", "reason": "Out of scope"})),
                expect([403, 200, 404, 403, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{mission}/team",
                |_| Some(json!({"version": 1, "members": ["{responder}"]})),
                expect([403, 200, 404, 403, 404, 404, 401]),
            ),
            (
                Method::GET,
                "/api/v1/openapi.json",
                |_| None,
                expect([200, 200, 200, 200, 200, 200, 200]),
            ),
            (
                Method::GET,
                "/healthz",
                |_| None,
                expect([200, 200, 200, 200, 200, 200, 200]),
            ),
            (
                Method::GET,
                "{mission}/cases",
                |_| None,
                expect([200, 200, 404, 200, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{mission}/cases",
                |_| Some(json!({"title": "DC01", "playbook": "wiper"})),
                expect([403, 201, 404, 403, 404, 404, 401]),
            ),
            (
                Method::GET,
                "{case}",
                |_| None,
                expect([200, 200, 404, 200, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{case}/tasks",
                |_| Some(json!({"title": "Image DC01"})),
                expect([403, 201, 404, 403, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{case}/notes",
                |_| Some(json!({"body": "Found **sdelete**"})),
                expect([403, 201, 404, 403, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{task}",
                |_| Some(json!({"version": 1, "status": "done"})),
                expect([403, 200, 404, 403, 404, 404, 401]),
            ),
            (
                Method::POST,
                "{case}/evidence?name=notes.json",
                |_| Some(json!({"raw": "bytes"})),
                expect([403, 201, 404, 201, 404, 404, 401]),
            ),
            (
                Method::GET,
                "{case}/evidence",
                |_| None,
                expect([200, 200, 404, 200, 404, 404, 401]),
            ),
        ];
        let mut failures = Vec::new();
        for (method, path, body, expected) in &cases {
            for (role, want) in ROLES.iter().zip(expected) {
                // Every attempt on a request gets a fresh one, so one role's
                // success does not change what the next role meets.
                let path = if path.starts_with("{request}") {
                    let request = f.request().await;
                    path.replace("{request}", &format!("/api/v1/requests/{}", request.id))
                } else if path.starts_with("{reviewed}") {
                    let request = f.reviewed().await;
                    path.replace("{reviewed}", &format!("/api/v1/requests/{}", request.id))
                } else if path.starts_with("{user}") {
                    let user = f.actor("responder").await.user.id;
                    path.replace("{user}", &format!("/api/v1/users/{user}"))
                } else if path.starts_with("{case}") {
                    let case = f.case().await;
                    path.replace("{case}", &format!("/api/v1/cases/{}", case.case.id))
                } else if path.starts_with("{task}") {
                    let case = f.case().await;
                    path.replace("{task}", &format!("/api/v1/tasks/{}", case.tasks[0].id))
                } else if path.starts_with("{mission}") {
                    let mission = f.mission().await;
                    path.replace("{mission}", &format!("/api/v1/missions/{}", mission.id))
                } else {
                    (*path).to_owned()
                };
                let responder = f.actor("responder").await.user.id;
                let body = body(unique()).map(|b| {
                    serde_json::from_str(&b.to_string().replace("{responder}", &responder))
                        .expect("JSON")
                });
                let (status, response) = f.call(role, method.clone(), &path, body).await;
                if status != *want {
                    failures.push(format!(
                        "{backend}: {role} {method} {path}: {status}, expected {want}: {response}"
                    ));
                }
                if !status.is_success() {
                    assert!(
                        response["error"]["code"].is_string(),
                        "{role} {method} {path}: {response}"
                    );
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

#[tokio::test]
async fn requesters_see_only_their_institution() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let mine = f.request().await;
        let (_, own) = f
            .call("requester", Method::GET, "/api/v1/requests", None)
            .await;
        let (_, other) = f
            .call("other_requester", Method::GET, "/api/v1/requests", None)
            .await;
        let (_, coordinator) = f
            .call("coordinator", Method::GET, "/api/v1/requests", None)
            .await;
        assert_eq!(own["items"][0]["id"], json!(mine.id), "{backend}");
        assert_eq!(other["items"], json!([]), "{backend}");
        assert_eq!(
            coordinator["items"].as_array().map(Vec::len),
            Some(1),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let audit_before = f
            .platform
            .store()
            .audit_events(1, 10_000)
            .await
            .expect("audit")
            .len();
        let url = format!("{}/api/v1/requests", f.base);
        let token = &f.tokens["requester"];
        let post = |body: Vec<u8>, content_type: &'static str| {
            f.client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
        };
        let mut unknown = request_body();
        unknown["owner"] = json!("me");
        let mut wrong_type = request_body();
        wrong_type["urgency"] = json!(5);
        let mut bad_enum = request_body();
        bad_enum["tlp"] = json!("purple");
        let mut empty = request_body();
        empty["summary"] = json!("   ");
        let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
            (
                "malformed",
                post(b"{\"summary\": ".to_vec(), "application/json"),
                400,
                "bad_request",
            ),
            (
                "unknown field",
                post(unknown.to_string().into_bytes(), "application/json"),
                400,
                "bad_request",
            ),
            (
                "wrong type",
                post(wrong_type.to_string().into_bytes(), "application/json"),
                400,
                "bad_request",
            ),
            (
                "unknown TLP",
                post(bad_enum.to_string().into_bytes(), "application/json"),
                400,
                "bad_request",
            ),
            (
                "empty summary",
                post(empty.to_string().into_bytes(), "application/json"),
                422,
                "invalid",
            ),
            (
                "oversized",
                post(vec![b' '; 2 << 20], "application/json"),
                413,
                "too_large",
            ),
            (
                "not JSON",
                post(request_body().to_string().into_bytes(), "text/plain"),
                415,
                "unsupported_media_type",
            ),
        ];
        for (name, request, status, code) in cases {
            let response = request.send().await.expect("HTTP");
            assert_eq!(response.status().as_u16(), status, "{backend}: {name}");
            let body: Value = response.json().await.expect("JSON error");
            assert_eq!(
                body["error"]["code"],
                json!(code),
                "{backend}: {name}: {body}"
            );
            assert!(
                !body["error"]["message"].as_str().unwrap_or("").is_empty(),
                "{name}"
            );
        }
        let (status, body) = f
            .call("requester", Method::GET, "/api/v1/requests?limit=0", None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = f
            .call("requester", Method::GET, "/api/v1/nowhere", None)
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (StatusCode::NOT_FOUND, &json!("not_found"))
        );
        let (_, list) = f
            .call("coordinator", Method::GET, "/api/v1/requests", None)
            .await;
        assert_eq!(list["items"], json!([]), "{backend}: nothing was stored");
        let audit_after = f
            .platform
            .store()
            .audit_events(1, 10_000)
            .await
            .expect("audit")
            .len();
        assert_eq!(audit_before, audit_after, "{backend}");
    }
}

#[tokio::test]
async fn sessions_rate_limits_and_tokens() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let login = |password: &'static str| {
            f.client
                .post(format!("{}/api/v1/session", f.base))
                .json(&json!({"email": "responder@example.org", "password": password}))
                .send()
        };
        let response = login(PASSWORD).await.expect("HTTP");
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie")
            .to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let session = cookie.split(';').next().expect("pair").to_owned();
        let me = f
            .client
            .get(format!("{}/api/v1/me", f.base))
            .header("cookie", &session)
            .send()
            .await
            .expect("HTTP");
        assert_eq!(me.status(), StatusCode::OK);
        // Signing out ends the session.
        f.client
            .delete(format!("{}/api/v1/session", f.base))
            .header("cookie", &session)
            .send()
            .await
            .expect("HTTP");
        let after = f
            .client
            .get(format!("{}/api/v1/me", f.base))
            .header("cookie", &session)
            .send()
            .await
            .expect("HTTP");
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

        // Five wrong passwords, then even the right one waits.
        for _ in 0..5 {
            assert_eq!(
                login("wrong password!!").await.expect("HTTP").status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let limited = login(PASSWORD).await.expect("HTTP");
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS, "{backend}");
        assert!(limited.headers().contains_key("retry-after"));

        // A token works until it is revoked.
        let (status, created) = f
            .call(
                "partner",
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": "script"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let secret = created["secret"].as_str().expect("secret").to_owned();
        let id = created["token"]["id"].as_str().expect("id").to_owned();
        assert!(
            created["token"].get("token_hash").is_none(),
            "the hash never leaves"
        );
        let with = |secret: &str| {
            f.client
                .get(format!("{}/api/v1/me", f.base))
                .bearer_auth(secret)
                .send()
        };
        assert_eq!(with(&secret).await.expect("HTTP").status(), StatusCode::OK);
        let (status, _) = f
            .call(
                "partner",
                Method::DELETE,
                &format!("/api/v1/tokens/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(
            with(&secret).await.expect("HTTP").status(),
            StatusCode::UNAUTHORIZED
        );
        // Someone else's token is not found, not revoked.
        let (status, _) = f
            .call(
                "responder",
                Method::DELETE,
                &format!("/api/v1/tokens/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn concurrent_edits_lose_nothing_and_the_state_machine_holds() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let request = f.request().await;
        let path = format!("/api/v1/requests/{}", request.id);
        // Coordinator reviews while the requester withdraws, both from version 1.
        let (review_path, withdraw_path) = (format!("{path}/review"), format!("{path}/withdraw"));
        let review = f.call(
            "coordinator",
            Method::POST,
            &review_path,
            Some(json!({"version": 1})),
        );
        let withdraw = f.call(
            "requester",
            Method::POST,
            &withdraw_path,
            Some(json!({"version": 1})),
        );
        let ((a, _), (b, _)) = tokio::join!(review, withdraw);
        let mut statuses = [a.as_u16(), b.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{backend}: exactly one wins");
        let (_, current) = f.call("coordinator", Method::GET, &path, None).await;
        assert_eq!(current["version"], json!(2));

        // Illegal moves are refused with the reason.
        let request = f.request().await;
        let path = format!("/api/v1/requests/{}", request.id);
        let (status, body) = f
            .call(
                "coordinator",
                Method::POST,
                &format!("{path}/decision"),
                Some(json!({"version": 1, "outcome": "accept"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("submitted cannot become accepted"),
            "{body}"
        );
        let (status, _) = f
            .call(
                "coordinator",
                Method::POST,
                &format!("{path}/review"),
                Some(json!({"version": 1})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = f
            .call(
                "coordinator",
                Method::POST,
                &format!("{path}/decision"),
                Some(json!({"version": 2, "outcome": "decline"})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a decline needs its reason: {body}"
        );
        let (status, body) = f
            .call("coordinator", Method::POST, &format!("{path}/decision"), Some(json!({"version": 2, "outcome": "decline", "reason": "Outside the memorandum's scope"})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, seen) = f.call("requester", Method::GET, &path, None).await;
        assert_eq!(
            seen["decline_reason"],
            json!("Outside the memorandum's scope")
        );
        let (status, _) = f
            .call(
                "requester",
                Method::POST,
                &format!("{path}/withdraw"),
                Some(json!({"version": 3})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "a decided request cannot be withdrawn"
        );

        // Every change was audited, with before and after, and the chain holds.
        let events = f
            .platform
            .store()
            .audit_of("request", &request.id)
            .await
            .expect("audit");
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "request.submit",
                "request.review",
                "council.convene",
                "request.decline"
            ]
        );
        assert_eq!(
            events[3].before.as_ref().map(|b| &b["status"]),
            Some(&json!("under_review"))
        );
        assert_eq!(
            events[3].after.as_ref().map(|a| &a["status"]),
            Some(&json!("declined"))
        );
        assert!(matches!(
            f.platform.verify_audit().await.expect("verify"),
            crrt_platform::AuditVerification::Intact { .. }
        ));
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let f = Fixture::start("sqlite").await;
    let (status, body) = f.call("anonymous", Method::GET, "/healthz", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!("ok")));
    let response = f
        .client
        .get(format!("{}/readyz", f.base))
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn activation_council_clock_checklist_team_and_mission_states() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let request = f.reviewed().await;
        let path = format!("/api/v1/requests/{}", request.id);
        let fixture = &f;
        let post = |role: &'static str, path: String, body: Value| async move {
            fixture.call(role, Method::POST, &path, Some(body)).await
        };
        let (_, council) = f
            .call("coordinator", Method::GET, &format!("{path}/council"), None)
            .await;
        assert!(
            council["council"]["lead_org_id"].is_string(),
            "the review convened the council: {council}"
        );
        // No agreement recorded: accepting is refused.
        let (status, body) = post(
            "coordinator",
            format!("{path}/decision"),
            json!({"version": 2, "outcome": "accept"}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{backend}: {body}");
        let (status, body) = post(
            "coordinator",
            format!("{path}/council"),
            json!({"organisation": "Ministry", "position": "agree"}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "only member states sit: {body}"
        );
        for position in ["object", "agree"] {
            let (status, body) = post(
                "coordinator",
                format!("{path}/council"),
                json!({"organisation": "NCSC-LT", "position": position}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (_, council) = f
            .call("requester", Method::GET, &format!("{path}/council"), None)
            .await;
        assert_eq!(
            council["positions"].as_array().map(Vec::len),
            Some(1),
            "a changed position replaces the old: {council}"
        );
        assert_eq!(council["positions"][0]["position"], json!("agree"));
        let (status, body) = post(
            "coordinator",
            format!("{path}/decision"),
            json!({"version": 2, "outcome": "accept"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, council) = f
            .call("coordinator", Method::GET, &format!("{path}/council"), None)
            .await;
        assert!(
            council["clock"]["hours_to_decision"].is_number(),
            "{council}"
        );
        assert_eq!(
            council["clock"]["within_promise"],
            Value::Null,
            "no team yet"
        );
        let mission = council["mission_id"]
            .as_str()
            .expect("accepting opened a mission")
            .to_owned();
        let m = format!("/api/v1/missions/{mission}");

        // Not active before the checklist and the team.
        let (status, body) = post(
            "coordinator",
            format!("{m}/status"),
            json!({"version": 1, "status": "active"}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("checklist"),
            "{body}"
        );
        let (status, body) = post(
            "coordinator",
            format!("{m}/checklist"),
            json!({"version": 1, "legal_basis": true, "points_of_contact": true, "secure_communications": true, "deployment": "on-site"}),
        )
        .await;
        assert_eq!(
            (status, &body["checklist_complete"]),
            (StatusCode::OK, &json!(true)),
            "{body}"
        );
        let (status, body) = post(
            "coordinator",
            format!("{m}/status"),
            json!({"version": 2, "status": "active"}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "no team yet: {body}");

        // The proposal ranks the forensic responder (the request asks for forensics).
        let (status, proposal) = f
            .call(
                "coordinator",
                Method::GET,
                &format!("{m}/proposal?size=2"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{proposal}");
        let first = &proposal["items"][0];
        assert_eq!(first["skills_matched"], json!(["forensics"]), "{proposal}");
        // Nobody is available in the fixture: listed, not proposed.
        assert_eq!(first["proposed"], json!(false), "{proposal}");
        let responder = f.actor("responder").await.user.id;
        let (status, _) = f.call("responder", Method::GET, &m, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not on the team yet");
        let (status, body) = post(
            "coordinator",
            format!("{m}/team"),
            json!({"version": 2, "members": [responder]}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["clock"]["within_promise"], json!(true), "{body}");
        let (status, seen) = f.call("responder", Method::GET, &m, None).await;
        assert_eq!(status, StatusCode::OK, "on the team now: {seen}");
        let (_, listed) = f
            .call("responder", Method::GET, "/api/v1/missions", None)
            .await;
        assert_eq!(listed["items"][0]["id"], json!(mission));
        let partner = f.actor("partner").await.user.id;
        let (status, _) = post(
            "coordinator",
            format!("{m}/team"),
            json!({"version": 3, "members": [partner]}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "partners are not team members"
        );

        for (version, next) in [(3, "active"), (4, "demobilised"), (5, "closed")] {
            let (status, body) = post(
                "coordinator",
                format!("{m}/status"),
                json!({"version": version, "status": next}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{backend}: {next}: {body}");
        }
        let (status, body) = post(
            "coordinator",
            format!("{m}/status"),
            json!({"version": 6, "status": "active"}),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("closed cannot become active"),
            "{body}"
        );
        let actions: Vec<String> = f
            .platform
            .store()
            .audit_of("mission", &mission)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            [
                "mission.open",
                "mission.checklist",
                "mission.team",
                "mission.active",
                "mission.demobilised",
                "mission.closed"
            ]
        );
    }
}

#[tokio::test]
async fn cases_from_playbooks_tasks_and_safe_notes() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let mission = f.mission().await;
        let responder = f.actor("responder").await.user.id;
        f.platform
            .confirm_team(
                &f.actor("coordinator").await,
                &mission.id,
                1,
                vec![responder.clone()],
            )
            .await
            .expect("team");
        let cases = format!("/api/v1/missions/{}/cases", mission.id);
        let (status, body) = f
            .call(
                "responder",
                Method::POST,
                &cases,
                Some(json!({"title": "x", "playbook": "phishing"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("wiper"),
            "names the known ones: {body}"
        );
        let (status, case) = f
            .call(
                "responder",
                Method::POST,
                &cases,
                Some(json!({"title": "Website", "playbook": "defacement"})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{backend}: a team member opens cases: {case}"
        );
        assert_eq!(case["tasks"].as_array().map(Vec::len), Some(5), "{case}");
        let case_path = format!("/api/v1/cases/{}", case["id"].as_str().expect("id"));

        let (status, note) = f
            .call(
                "responder",
                Method::POST,
                &format!("{case_path}/notes"),
                Some(json!({"body": "Webshell at `/uploads/x.aspx` <script>alert(document.cookie)</script> [see](javascript:alert(1))"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{note}");
        let html = note["html"].as_str().expect("html");
        assert!(html.contains("<code>/uploads/x.aspx</code>"), "{html}");
        assert!(
            !html.contains("<script") && !html.contains("<a href=\"javascript"),
            "{html}"
        );

        let partner = f.actor("partner").await.user.id;
        let (status, body) = f
            .call(
                "responder",
                Method::POST,
                &format!("{case_path}/tasks"),
                Some(json!({"title": "Call the hoster", "assignee_id": partner})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "only team members take tasks: {body}"
        );
        let (status, task) = f
            .call(
                "responder",
                Method::POST,
                &format!("{case_path}/tasks"),
                Some(json!({"title": "Call the hoster", "assignee_id": responder, "due_on": "2022-02-26"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{task}");
        let task_path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
        let (status, _) = f
            .call(
                "responder",
                Method::POST,
                &task_path,
                Some(json!({"version": 1, "status": "in_progress"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = f
            .call(
                "coordinator",
                Method::POST,
                &task_path,
                Some(json!({"version": 1, "status": "done"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "stale version: {body}");
        let (status, body) = f
            .call(
                "responder",
                Method::POST,
                &task_path,
                Some(json!({"version": 2, "status": "finished"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, body) = f
            .call(
                "responder",
                Method::POST,
                &task_path,
                Some(json!({"version": 2, "due_on": "next week"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

        // The requester reads the case, with the notes rendered safely.
        let (status, seen) = f.call("requester", Method::GET, &case_path, None).await;
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(seen["notes"][0]["html"], note["html"]);
        assert_eq!(seen["tasks"].as_array().map(Vec::len), Some(6));
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint_and_validates() {
    let f = Fixture::start("sqlite").await;
    let (status, doc) = f
        .call("anonymous", Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort();
    let mut expected = vec![
        "/readyz",
        "/api/v1/session",
        "/api/v1/me",
        "/api/v1/organisations",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/requests",
        "/api/v1/requests/{id}",
        "/api/v1/requests/{id}/withdraw",
        "/api/v1/requests/{id}/review",
        "/api/v1/requests/{id}/decision",
        "/api/v1/requests/{id}/council",
        "/api/v1/missions",
        "/api/v1/missions/{id}",
        "/api/v1/missions/{id}/checklist",
        "/api/v1/missions/{id}/proposal",
        "/api/v1/missions/{id}/recommendations",
        "/api/v1/missions/{id}/reports/final",
        "/api/v1/missions/{id}/reports/situation",
        "/api/v1/missions/{id}/sitreps",
        "/api/v1/missions/{id}/team",
        "/api/v1/missions/{id}/status",
        "/api/v1/missions/{id}/cases",
        "/api/v1/cases/{id}",
        "/api/v1/cases/{id}/tasks",
        "/api/v1/cases/{id}/notes",
        "/api/v1/tasks/{id}",
        "/api/v1/cases/{id}/evidence",
        "/api/v1/evidence/{id}/content",
        "/api/v1/evidence/{id}/custody",
        "/api/v1/cases/{id}/uploads",
        "/api/v1/uploads/{id}",
        "/api/v1/rulepacks",
        "/api/v1/rulepacks/{id}",
        "/api/v1/cases/{id}/hunts",
        "/api/v1/hunts/{id}",
        "/api/v1/hunts/{id}/cancel",
        "/api/v1/cases/{id}/findings",
        "/api/v1/cases/{id}/findings/import",
        "/api/v1/cases/{id}/timeline",
        "/api/v1/findings/{id}/triage",
        "/api/v1/audit",
        "/api/v1/indicators",
        "/api/v1/indicators/count",
        "/api/v1/indicators/import",
        "/api/v1/indicators/export",
        "/api/v1/indicators/{id}",
        "/api/v1/findings/{id}/promote",
        "/api/v1/missions/{id}/watch",
        "/api/v1/missions/{id}/watch/alerts",
        "/api/v1/missions/{id}/watch/notifications",
        "/api/v1/watch/targets/{id}",
        "/api/v1/watch/targets/{id}/rebaseline",
        "/api/v1/watch/alerts/{id}/body",
        "/api/v1/watch/alerts/{id}/diff",
    ];
    expected.sort();
    assert_eq!(paths, expected);

    // The reference validator, when this machine has it (CI installs it).
    let file = f.dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("write");
    let validated = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output();
    match validated {
        Ok(out) if out.status.success() => {}
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but openapi-spec-validator is not installed"
            );
            eprintln!("note: openapi-spec-validator not installed; document not validated");
        }
        Ok(out) => panic!(
            "the OpenAPI document is invalid:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "python3: {e}");
            eprintln!("note: python3 not found ({e}); document not validated");
        }
    }
}

#[tokio::test]
async fn profiles_passwords_and_disabled_accounts() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let (status, me) = f
            .call(
                "responder",
                Method::POST,
                "/api/v1/me",
                Some(json!({"version": 1, "availability": [{"from": "2022-02-24", "to": "2022-03-31"}], "skills": ["forensics", "ot-ics"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{backend}: {me}");
        assert_eq!(me["skills"], json!(["forensics", "ot-ics"]));
        let (status, _) = f
            .call(
                "responder",
                Method::POST,
                "/api/v1/me",
                Some(json!({"version": 1, "display_name": "stale"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = f
            .call("responder", Method::POST, "/api/v1/me", Some(json!({"version": 2, "availability": [{"from": "2022-03-31", "to": "2022-02-24"}]})))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "windows run forwards"
        );
        let (status, _) = f
            .call("responder", Method::POST, "/api/v1/me", Some(json!({"version": 2, "current_password": "not it at all", "new_password": "another long password"})))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // A password change ends the sessions; the new one signs in.
        let login = |password: &'static str| {
            f.client
                .post(format!("{}/api/v1/session", f.base))
                .json(&json!({"email": "responder@example.org", "password": password}))
                .send()
        };
        let session = login(PASSWORD).await.expect("HTTP");
        let cookie = session.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();
        let (status, _) = f
            .call("responder", Method::POST, "/api/v1/me", Some(json!({"version": 2, "current_password": PASSWORD, "new_password": "another long password"})))
            .await;
        assert_eq!(status, StatusCode::OK);
        let me_with = |cookie: String| {
            f.client
                .get(format!("{}/api/v1/me", f.base))
                .header("cookie", cookie)
                .send()
        };
        assert_eq!(
            me_with(cookie).await.expect("HTTP").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            login("another long password").await.expect("HTTP").status(),
            StatusCode::OK
        );

        // A disabled account can do nothing, by token or by password.
        let responder = f.actor("responder").await.user.id;
        let (status, _) = f
            .call(
                "admin",
                Method::POST,
                &format!("/api/v1/users/{responder}"),
                Some(json!({"disabled": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = f.call("responder", Method::GET, "/api/v1/me", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            login("another long password").await.expect("HTTP").status(),
            StatusCode::UNAUTHORIZED
        );
        let admin = f.actor("admin").await.user.id;
        let (status, _) = f
            .call(
                "admin",
                Method::POST,
                &format!("/api/v1/users/{admin}"),
                Some(json!({"disabled": true})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "no locking oneself out");
    }
}

#[tokio::test]
async fn evidence_is_streamed_hashed_deduplicated_and_downloads_are_audited() {
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let case = f.case().await;
        let upload = |role: &'static str, name: &'static str, bytes: Vec<u8>| {
            let mut request = f
                .client
                // The test names need no escaping in a query string.
                .post(format!(
                    "{}/api/v1/cases/{}/evidence?name={name}",
                    f.base, case.case.id
                ))
                .header("content-type", "application/octet-stream")
                .body(bytes);
            if let Some(token) = f.tokens.get(role) {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let content: Vec<u8> = (0..50_000u32)
            .flat_map(|i| i.to_le_bytes())
            .take(60_000)
            .collect();
        let sha = hex::encode(sha2::Sha256::digest(&content));
        let response = upload(
            "requester",
            "../../Windows/System32/winevt/Logs/Security.evtx",
            content.clone(),
        )
        .await
        .expect("HTTP");
        assert_eq!(response.status(), StatusCode::CREATED, "{backend}");
        let stored: Value = response.json().await.expect("JSON");
        assert_eq!(
            (stored["sha256"].as_str(), stored["size"].as_i64()),
            (Some(sha.as_str()), Some(60_000))
        );
        assert_eq!(
            stored["name"],
            json!("Security.evtx"),
            "a name, never a path"
        );

        let again = upload("coordinator", "copy.evtx", content.clone())
            .await
            .expect("HTTP");
        assert_eq!(
            again.status(),
            StatusCode::CONFLICT,
            "the same content twice in a case"
        );
        let too_big = upload("coordinator", "big.bin", vec![7u8; 70_000])
            .await
            .expect("HTTP");
        assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // 60 kB stored; another 61 kB fits the file limit but not the case's 120 kB.
        let over_case = upload("coordinator", "more.bin", vec![3u8; 61_000])
            .await
            .expect("HTTP");
        assert_eq!(over_case.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: Value = over_case.json().await.expect("JSON");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("the case holds"),
            "{body}"
        );
        let empty = upload("coordinator", "empty.bin", Vec::new())
            .await
            .expect("HTTP");
        assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let outsider = upload("other_requester", "x.bin", vec![1, 2, 3])
            .await
            .expect("HTTP");
        assert_eq!(outsider.status(), StatusCode::NOT_FOUND);

        // A client that promises 100 kB, sends 1 kB and hangs up.
        let address = f.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        let head = format!(
            "POST /api/v1/cases/{}/evidence?name=cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n",
            case.case.id, f.tokens["coordinator"]
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        stream.write_all(&[9u8; 1000]).await.expect("write");
        drop(stream);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        let (_, listed) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/cases/{}/evidence", case.case.id),
                None,
            )
            .await;
        assert_eq!(
            listed["items"].as_array().map(Vec::len),
            Some(1),
            "{backend}: only the complete upload: {listed}"
        );
        let incoming = f.dir.path().join("evidence/.incoming");
        assert_eq!(
            std::fs::read_dir(&incoming).expect("dir").count(),
            0,
            "no half-written file is left"
        );

        // Download: the same bytes, the hash in a header, an audit event.
        let id = stored["id"].as_str().expect("id");
        let response = f
            .client
            .get(format!("{}/api/v1/evidence/{id}/content", f.base))
            .bearer_auth(&f.tokens["coordinator"])
            .send()
            .await
            .expect("HTTP");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-content-sha256"], sha.as_str());
        assert_eq!(response.bytes().await.expect("body").to_vec(), content);
        let (status, _) = f
            .call(
                "partner",
                Method::GET,
                &format!("/api/v1/evidence/{id}/content"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let actions: Vec<String> = f
            .platform
            .store()
            .audit_of("evidence", id)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["evidence.upload", "evidence.download"]);

        // Stored bytes altered behind the platform's back are caught.
        assert_eq!(
            f.platform.verify_evidence().await.expect("verify").1.len(),
            0
        );
        let stored_file = f.dir.path().join("evidence").join(&sha[..2]).join(&sha);
        std::fs::write(&stored_file, b"tampered").expect("tamper");
        let (n, problems) = f.platform.verify_evidence().await.expect("verify");
        assert_eq!((n, problems.len()), (1, 1), "{problems:?}");
        assert!(problems[0].1.contains("content changed"), "{problems:?}");
    }
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut bytes = Vec::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut bytes));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        zip.start_file(*name, options).expect("entry");
        zip.write_all(content).expect("write");
    }
    zip.finish().expect("finish");
    bytes
}

#[tokio::test]
async fn rule_packs_are_checked_and_kept_and_bombs_refused() {
    let f = Fixture::start("sqlite").await;
    let good = |n: u32| {
        format!(
            "title: rule {n}\nlogsource: {{product: windows}}\nlevel: high\ndetection:\n  sel: {{CommandLine|contains: 'x{n}'}}\n  condition: sel\n"
        )
    };
    let (r1, r2, r3) = (good(1), good(2), good(3));
    let pack = zip_of(&[
        ("rules/a.yml", r1.as_bytes()),
        ("rules/b.yaml", r2.as_bytes()),
        (
            "rules/broken.yml",
            b"title: broken\ndetection:\n  sel: {A: 1}\n  condition: sel and\n",
        ),
        ("README.md", b"not a rule"),
        ("../../outside.yml", r3.as_bytes()),
    ]);
    let upload = |role: &'static str, name: &'static str, bytes: Vec<u8>| {
        let mut request = f
            .client
            .post(format!("{}/api/v1/rulepacks?name={name}", f.base))
            .header("content-type", "application/zip")
            .body(bytes);
        if let Some(token) = f.tokens.get(role) {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let response = upload("responder", "field-pack", pack.clone())
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored: Value = response.json().await.expect("JSON");
    assert_eq!(
        (stored["n_files"].as_i64(), stored["n_rules"].as_i64()),
        (Some(4), Some(3)),
        "{stored}"
    );
    assert_eq!(
        stored["problems"][0]["file"],
        json!("rules/broken.yml"),
        "{stored}"
    );
    assert_eq!(
        upload("coordinator", "again", pack)
            .await
            .expect("HTTP")
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        upload("coordinator", "one", good(4).into_bytes())
            .await
            .expect("HTTP")
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        upload("requester", "mine", good(5).into_bytes())
            .await
            .expect("HTTP")
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload("partner", "mine", good(6).into_bytes())
            .await
            .expect("HTTP")
            .status(),
        StatusCode::FORBIDDEN
    );

    // A ZIP bomb: 200 MiB of zeros in a few hundred kilobytes.
    let bomb = {
        use std::io::Write;
        let mut bytes = Vec::new();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut bytes));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file("bomb.yml", options).expect("entry");
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..200 {
            zip.write_all(&zeros).expect("write");
        }
        zip.finish().expect("finish");
        bytes
    };
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let response = upload("coordinator", "bomb", bomb).await.expect("HTTP");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("ZIP bomb"),
        "{body}"
    );
    let response = upload("coordinator", "binary", vec![0xff, 0xfe, 0x00, 0x01])
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let (status, list) = f
        .call("responder", Method::GET, "/api/v1/rulepacks", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(2),
        "the refused ones left nothing: {list}"
    );
    let (status, _) = f
        .call("requester", Method::GET, "/api/v1/rulepacks", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn hunts_run_in_the_background_and_findings_land_once_on_the_case() {
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let case = f.case().await;
        let events = concat!(
            r#"{"winlog": {"channel": "Security", "event_id": 4688, "computer_name": "DC01", "record_id": 7, "event_data": {"CommandLine": "whoami /all", "NewProcessName": "C:\\Windows\\System32\\whoami.exe"}}, "@timestamp": "2022-02-23T16:00:00Z"}"#,
            "\n",
            r#"{"winlog": {"channel": "Security", "event_id": 4688, "computer_name": "DC01", "record_id": 8, "event_data": {"CommandLine": "notepad"}}, "@timestamp": "2022-02-23T16:00:01Z"}"#,
            "\n"
        );
        let uploaded: Value = f
            .client
            .post(format!(
                "{}/api/v1/cases/{}/evidence?name=dc01.jsonl",
                f.base, case.case.id
            ))
            .bearer_auth(&f.tokens["requester"])
            .body(events)
            .send()
            .await
            .expect("HTTP")
            .json()
            .await
            .expect("JSON");
        let rule = "title: Whoami\nid: 11111111-2222-3333-4444-555555555555\nlogsource: {category: process_creation, product: windows}\nlevel: medium\ntags: [attack.t1033]\ndetection:\n  sel: {CommandLine|contains: whoami}\n  condition: sel\n";
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
        let hunts = format!("/api/v1/cases/{}/hunts", case.case.id);
        let run = || async {
            let (status, hunt) = f
                .call(
                    "coordinator",
                    Method::POST,
                    &hunts,
                    Some(json!({"rulepacks": [pack["id"]]})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{backend}: {hunt}");
            f.finished_hunt("requester", hunt["id"].as_str().expect("id"))
                .await
        };
        let first = run().await;
        assert_eq!(first["status"], json!("done"), "{first}");
        assert_eq!(first["n_findings"], json!(1));
        let second = run().await;
        assert_eq!(
            (second["status"].as_str(), second["n_findings"].as_i64()),
            (Some("done"), Some(0)),
            "already known: {second}"
        );

        // The evidence's chain of custody: the upload, then each hunt that read it.
        let custody = format!(
            "/api/v1/evidence/{}/custody",
            uploaded["id"].as_str().expect("id")
        );
        let (status, chain) = f.call("requester", Method::GET, &custody, None).await;
        assert_eq!(status, StatusCode::OK, "{chain}");
        let actions: Vec<&str> = chain
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(
            actions,
            ["evidence.upload", "evidence.hunted", "evidence.hunted"]
        );
        assert_eq!(chain[1]["after"]["hunt"], first["id"]);
        assert_eq!(chain[1]["after"]["status"], json!("done"));
        let (status, _) = f.call("other_requester", Method::GET, &custody, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let findings_path = format!("/api/v1/cases/{}/findings", case.case.id);
        let (_, findings) = f.call("requester", Method::GET, &findings_path, None).await;
        let items = findings["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{findings}");
        let finding = &items[0];
        assert_eq!(finding["evidence_file"], json!("dc01.jsonl"));
        assert_eq!(finding["evidence_id"], uploaded["id"]);
        assert_eq!(finding["rule_title"], json!("Whoami"));
        assert_eq!(finding["host"], json!("DC01"));
        assert_eq!(finding["triage"], json!("needs_review"));

        let triage = format!(
            "/api/v1/findings/{}/triage",
            finding["id"].as_str().expect("id")
        );
        let (status, body) = f
            .call(
                "coordinator",
                Method::POST,
                &triage,
                Some(json!({"verdict": "true_positive", "comment": "attacker recon"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["triage"], json!("true_positive"));
        let (status, _) = f
            .call(
                "coordinator",
                Method::POST,
                &triage,
                Some(json!({"verdict": "maybe"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = f
            .call(
                "requester",
                Method::POST,
                &triage,
                Some(json!({"verdict": "false_positive"})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "the institution reads findings, the team judges them"
        );
        let (status, _) = f.call("partner", Method::GET, &findings_path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The case's timeline: the playbook's tasks and the finding, in order.
        let (status, timeline) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/cases/{}/timeline", case.case.id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{timeline}");
        let entries = timeline["items"].as_array().expect("items");
        let finding_entry = entries
            .iter()
            .find(|e| e["kind"] == json!("finding"))
            .expect("the finding");
        assert_eq!(
            finding_entry["at"],
            json!("2022-02-23T16:00:00.000000Z"),
            "{timeline}"
        );
        assert_eq!(
            entries[0]["kind"],
            json!("finding"),
            "the 2022 event comes before today's tasks: {timeline}"
        );
        assert_eq!(
            entries
                .iter()
                .filter(|e| e["kind"] == json!("task"))
                .count(),
            6
        );
        let cancel = format!("/api/v1/hunts/{}/cancel", first["id"].as_str().expect("id"));
        let (status, _) = f.call("coordinator", Method::POST, &cancel, None).await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "a finished hunt cannot be cancelled"
        );
    }
}

#[tokio::test]
async fn yara_packs_scan_uploaded_files_and_the_members_of_packages() {
    const RULE: &str = "rule Wiper_Note : T1485 {\n  meta:\n    description = \"A wiper's note\"\n    score = 85\n  strings:\n    $n = \"Your hard drive has been corrupted\"\n  condition:\n    uint16(0) == 0x5a4d and $n\n}\n";
    let stage1: &[u8] = b"MZ\x90\x00AAAAA\x00Your hard drive has been corrupted.";
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let case = f.case().await;
        let upload_rules = |name: &str, bytes: Vec<u8>| {
            f.client
                .post(format!("{}/api/v1/rulepacks?name={name}", f.base))
                .bearer_auth(&f.tokens["coordinator"])
                .body(bytes)
                .send()
        };
        // One kind per pack; a file that does not compile is listed with its line.
        let mixed = zip_of(&[("a.yar", RULE.as_bytes()), ("b.yml", b"title: x")]);
        let response = upload_rules("mixed", mixed).await.expect("HTTP");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.expect("JSON");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("two packs"),
            "{body}"
        );
        let pack = zip_of(&[
            ("wipers/note.yar", RULE.as_bytes()),
            (
                "wipers/broken.yar",
                b"rule Broken {\n  condition:\n    $nope\n}\n",
            ),
        ]);
        let response = upload_rules("wipers", pack).await.expect("HTTP");
        assert_eq!(response.status(), StatusCode::CREATED);
        let pack: Value = response.json().await.expect("JSON");
        assert_eq!(pack["kind"], json!("yara"), "{pack}");
        assert_eq!(
            (pack["n_files"].as_i64(), pack["n_rules"].as_i64()),
            (Some(2), Some(1))
        );
        assert_eq!(pack["problems"][0]["file"], json!("wipers/broken.yar"));
        assert!(
            pack["problems"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("line 3:"),
            "{pack}"
        );
        // A single rule file named without an extension is read as YARA too.
        let response = upload_rules(
            "ukraine wipers",
            RULE.replace("Wiper_Note", "Other").into_bytes(),
        )
        .await
        .expect("HTTP");
        let single: Value = response.json().await.expect("JSON");
        assert_eq!(single["kind"], json!("yara"), "{single}");

        for (name, bytes) in [
            ("stage1.exe", stage1.to_vec()),
            (
                "triage.zip",
                zip_of(&[
                    ("C/PerfLogs/stage1.exe", stage1),
                    ("C/notes.txt", b"nothing"),
                ]),
            ),
        ] {
            let response = f
                .client
                .post(format!(
                    "{}/api/v1/cases/{}/evidence?name={name}",
                    f.base, case.case.id
                ))
                .bearer_auth(&f.tokens["requester"])
                .body(bytes)
                .send()
                .await
                .expect("HTTP");
            assert_eq!(response.status(), StatusCode::CREATED);
        }
        let (status, hunt) = f
            .call(
                "coordinator",
                Method::POST,
                &format!("/api/v1/cases/{}/hunts", case.case.id),
                Some(json!({"rulepacks": [pack["id"]]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{hunt}");
        let hunt = f
            .finished_hunt("requester", hunt["id"].as_str().expect("id"))
            .await;
        assert_eq!(
            (hunt["status"].as_str(), hunt["n_findings"].as_i64()),
            (Some("done"), Some(2)),
            "{backend}: {hunt}"
        );
        let (_, findings) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/cases/{}/findings", case.case.id),
                None,
            )
            .await;
        let items = findings["items"].as_array().expect("items");
        let by_file = |file: &str| {
            items
                .iter()
                .find(|i| i["evidence_file"] == json!(file))
                .unwrap_or_else(|| panic!("{backend}: no finding on {file}: {findings}"))
        };
        let plain = by_file("stage1.exe");
        assert_eq!(plain["rule_id"], json!("yara:Wiper_Note"));
        assert_eq!(plain["level"], json!("critical"));
        // Named as uploaded, not by the store's path; no invented time.
        assert_eq!(plain["event"]["file"]["path"], json!("stage1.exe"));
        assert_eq!(plain["at"], Value::Null, "{plain}");
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(stage1));
        assert_eq!(plain["event"]["file"]["sha256"], json!(sha));
        let member = by_file("triage.zip!/C/PerfLogs/stage1.exe");
        assert_eq!(member["event"]["file"]["sha256"], json!(sha));
        assert_eq!(
            member["event"]["strings"][0]["matches"][0]["offset"],
            json!(10)
        );
    }
}

/// Resumable uploads: chunks at the server's offset, a broken chunk keeps
/// what arrived, the announced SHA-256 is checked at the end, only the
/// uploader sees the upload, and expired ones go at restart.
#[tokio::test]
async fn resumable_uploads_survive_broken_chunks_and_check_the_announced_hash() {
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    for backend in backends() {
        let f = Fixture::start(backend).await;
        let case = f.case().await;
        let uploads = format!("/api/v1/cases/{}/uploads", case.case.id);
        let content: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sha = hex::encode(sha2::Sha256::digest(&content));
        let (status, upload) = f
            .call(
                "requester",
                Method::POST,
                &uploads,
                Some(json!({"name": "C:\\logs\\Security.evtx", "size": 50_000, "sha256": sha})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {upload}");
        assert_eq!(upload["name"], json!("Security.evtx"));
        assert_eq!(upload["received"], json!(0));
        let id = upload["id"].as_str().expect("id").to_owned();
        let at = format!("/api/v1/uploads/{id}");

        // Only the uploader sees it; outsiders cannot start one.
        for role in ["coordinator", "other_requester", "partner"] {
            let (status, _) = f.call(role, Method::GET, &at, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{role}");
        }
        let (status, _) = f
            .call(
                "other_requester",
                Method::POST,
                &uploads,
                Some(json!({"name": "x.bin", "size": 10})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for (body, expected) in [
            (
                json!({"name": "big.bin", "size": 70_000}),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                json!({"name": "empty.bin", "size": 0}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json!({"name": "x.bin", "size": 5, "sha256": "xyz"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let (status, answer) = f
                .call("requester", Method::POST, &uploads, Some(body))
                .await;
            assert_eq!(status, expected, "{answer}");
        }

        let send = |offset: u64, bytes: Vec<u8>| {
            f.client
                .patch(format!("{}{at}?offset={offset}", f.base))
                .bearer_auth(&f.tokens["requester"])
                .body(bytes)
                .send()
        };
        let first = send(0, content[..20_000].to_vec()).await.expect("HTTP");
        assert_eq!(first.status(), StatusCode::OK);
        let first: Value = first.json().await.expect("JSON");
        assert_eq!(first["upload"]["received"], json!(20_000));
        assert_eq!(first["evidence"], Value::Null);
        let stale = send(0, content[..100].to_vec()).await.expect("HTTP");
        assert_eq!(stale.status(), StatusCode::CONFLICT);
        let stale = stale.text().await.expect("body");
        assert!(stale.contains("send from offset 20000"), "{stale}");

        // A chunk that promises 30 kB, sends 10 kB and hangs up.
        let address = f.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        let head = format!(
            "PATCH {at}?offset=20000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\nContent-Length: 30000\r\n\r\n",
            f.tokens["requester"]
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        stream
            .write_all(&content[20_000..30_000])
            .await
            .expect("write");
        stream.flush().await.expect("flush");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(stream);
        let mut received = 0;
        for _ in 0..50 {
            let (_, now) = f.call("requester", Method::GET, &at, None).await;
            received = now["received"].as_u64().expect("received");
            if received == 30_000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(received, 30_000, "{backend}: what arrived is kept");
        let (_, listed) = f.call("requester", Method::GET, &uploads, None).await;
        assert_eq!(listed[0]["id"], json!(id), "{listed}");
        let (_, theirs) = f.call("coordinator", Method::GET, &uploads, None).await;
        assert_eq!(theirs, json!([]));

        // Past the announced size: refused; what fits may be kept.
        let mut too_much = content[30_000..].to_vec();
        too_much.extend_from_slice(&[0; 5_000]);
        let over = send(30_000, too_much).await.expect("HTTP");
        assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let (_, now) = f.call("requester", Method::GET, &at, None).await;
        let received = now["received"].as_u64().expect("received");
        assert!((30_000..=50_000).contains(&received), "{now}");
        let last = send(received, content[received as usize..].to_vec())
            .await
            .expect("HTTP");
        assert_eq!(last.status(), StatusCode::CREATED);
        let last: Value = last.json().await.expect("JSON");
        assert_eq!(last["evidence"]["sha256"], json!(sha), "{last}");
        assert_eq!(last["evidence"]["name"], json!("Security.evtx"));
        let (status, _) = f.call("requester", Method::GET, &at, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "done with");
        // The same content announced again is refused before any byte.
        let (status, again) = f
            .call(
                "requester",
                Method::POST,
                &uploads,
                Some(json!({"name": "again.evtx", "size": 50_000, "sha256": sha})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{again}");
        let download = f
            .download("coordinator", &last["evidence"])
            .await
            .bytes()
            .await
            .expect("body");
        assert!(download.as_ref() == content.as_slice());

        // Another hash than announced: dropped with the reason, nothing kept.
        let other: Vec<u8> = content.iter().rev().copied().collect();
        let announced = hex::encode(sha2::Sha256::digest(b"what the client meant to send"));
        let (_, wrong) = f
            .call(
                "requester",
                Method::POST,
                &uploads,
                Some(json!({"name": "other.bin", "size": 50_000, "sha256": announced})),
            )
            .await;
        let wrong_at = format!("/api/v1/uploads/{}", wrong["id"].as_str().expect("id"));
        let refused = f
            .client
            .patch(format!("{}{wrong_at}?offset=0", f.base))
            .bearer_auth(&f.tokens["requester"])
            .body(other)
            .send()
            .await
            .expect("HTTP");
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let refused = refused.text().await.expect("body");
        assert!(refused.contains("not the announced"), "{refused}");
        let (status, _) = f.call("requester", Method::GET, &wrong_at, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, evidence) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/cases/{}/evidence", case.case.id),
                None,
            )
            .await;
        assert_eq!(evidence["items"].as_array().map(Vec::len), Some(1));

        // Cancelled: gone. Expired: removed at the next start; fresh: kept.
        let start = |name: &'static str| {
            f.call(
                "requester",
                Method::POST,
                &uploads,
                Some(json!({"name": name, "size": 1_000})),
            )
        };
        let (_, cancelled) = start("cancelled.bin").await;
        let cancelled_at = format!("/api/v1/uploads/{}", cancelled["id"].as_str().expect("id"));
        let (status, _) = f
            .call("requester", Method::DELETE, &cancelled_at, None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = f.call("requester", Method::GET, &cancelled_at, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, stale) = start("stale.bin").await;
        let (_, fresh) = start("fresh.bin").await;
        for upload in [&stale, &fresh] {
            let at = format!("/api/v1/uploads/{}", upload["id"].as_str().expect("id"));
            let sent = f
                .client
                .patch(format!("{}{at}?offset=0", f.base))
                .bearer_auth(&f.tokens["requester"])
                .body(vec![1u8; 100])
                .send()
                .await
                .expect("HTTP");
            assert_eq!(sent.status(), StatusCode::OK);
        }
        let partial = f.dir.path().join("evidence/.partial");
        let two_days_ago =
            std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(partial.join(format!("{}.part", stale["id"].as_str().expect("id"))))
            .expect("part")
            .set_modified(two_days_ago)
            .expect("mtime");
        let reopened = crrt_platform::EvidenceStore::open(f.dir.path().join("evidence"), 64 << 10)
            .expect("store");
        assert!(
            reopened.remove_broken_uploads() >= 2,
            "the stale upload's two files"
        );
        let (status, _) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/uploads/{}", stale["id"].as_str().expect("id")),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: expired");
        let (status, kept) = f
            .call(
                "requester",
                Method::GET,
                &format!("/api/v1/uploads/{}", fresh["id"].as_str().expect("id")),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{kept}");
        assert_eq!(kept["received"], json!(100));
    }
}
