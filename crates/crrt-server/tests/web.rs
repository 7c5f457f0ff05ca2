//! The web UI over real HTTP, without a browser: sessions, CSRF, security
//! headers, escaping, and what each role and organisation may not see. The
//! browser journeys are in `crates/crrt/tests/ui.rs`.

mod common;

use common::*;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};

/// A browser-like client that does not follow redirects, so each answer
/// can be checked.
fn browser() -> Client {
    client_builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Signs in through the form; returns the session cookie.
async fn sign_in(f: &Fixture, key: &str) -> String {
    let response = browser()
        .post(format!("{}/signin", f.base))
        .form(&[
            ("email", format!("{key}@example.org")),
            ("password", PASSWORD.into()),
            ("next", "/dashboard".into()),
        ])
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{key} signs in");
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("crrt_session="))
        .expect("a session cookie");
    cookie.split(';').next().expect("pair").to_owned()
}

async fn get(cookie: &str, url: String) -> (StatusCode, String) {
    let response = browser()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("HTTP");
    (response.status(), response.text().await.expect("body"))
}

/// The CSRF token the page's forms carry.
fn csrf_of(page: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..start + 32].to_owned()
}

async fn post(cookie: &str, url: String, form: &[(&str, &str)]) -> reqwest::Response {
    browser()
        .post(url)
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .expect("HTTP")
}

#[tokio::test]
async fn pages_need_a_session_and_forms_need_its_csrf_token() {
    let f = Fixture::start("sqlite").await;
    let case = f.case().await;

    let response = browser()
        .get(format!("{}/dashboard", f.base))
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/signin?next=%2Fdashboard",
        "signed out, a page sends you to sign in and back"
    );

    // A sign-in form posted from another site is refused.
    let response = browser()
        .post(format!("{}/signin", f.base))
        .header(ORIGIN, "https://evil.example")
        .form(&[("email", "coordinator@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(SET_COOKIE).is_none());
    // An open redirect is not offered either.
    let response = browser()
        .post(format!("{}/signin", f.base))
        .form(&[
            ("email", "coordinator@example.org"),
            ("password", PASSWORD),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.headers()[LOCATION], "/dashboard");

    let cookie = sign_in(&f, "coordinator").await;
    let response = browser()
        .get(format!("{}/cases/{}", f.base, case.case.id))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let page = response.text().await.expect("body");
    assert!(!page.contains("<script>"), "no inline script on a page");
    assert!(!page.contains("style=\""), "no inline style on a page");
    let token = csrf_of(&page);

    let notes = format!("{}/cases/{}/notes", f.base, case.case.id);
    for (why, form) in [
        ("no token", vec![("markdown", "forged")]),
        (
            "a wrong token",
            vec![
                ("_csrf", "00000000000000000000000000000000"),
                ("markdown", "forged"),
            ],
        ),
    ] {
        let response = post(&cookie, notes.clone(), &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{why}");
    }
    // Another session's token is no good here.
    let other = sign_in(&f, "admin").await;
    let (_, admin_page) = get(&other, format!("{}/dashboard", f.base)).await;
    let response = post(
        &cookie,
        notes.clone(),
        &[("_csrf", &csrf_of(&admin_page)), ("markdown", "forged")],
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "another session's token"
    );
    let view = f
        .platform
        .case(&f.actor("coordinator").await, &case.case.id)
        .await
        .expect("case");
    assert!(view.notes.is_empty(), "nothing was written");

    let response = post(
        &cookie,
        notes.clone(),
        &[
            ("_csrf", &token),
            ("markdown", "Real note"),
            ("intent", "save"),
        ],
    )
    .await;
    let (_, page) = get(
        &with_flash(&cookie, &response),
        format!("{}/cases/{}", f.base, case.case.id),
    )
    .await;
    assert!(page.contains("Note added."), "the flash message shows once");
    assert!(page.contains("Real note"));

    // Signing out ends the session for the API too.
    let response = post(&cookie, format!("{}/signout", f.base), &[("_csrf", &token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, _) = get(&cookie, format!("{}/api/v1/me", f.base)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A form too large is refused before it is read.
    let cookie = sign_in(&f, "coordinator").await;
    let big = "x".repeat(300 << 10);
    let response = post(&cookie, notes, &[("_csrf", &token), ("markdown", &big)]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn each_role_and_organisation_sees_only_its_own_pages() {
    let f = Fixture::start("sqlite").await;
    let case = f.case().await;
    let mission = case.case.mission_id.clone();
    let request = f
        .platform
        .mission(&f.actor("coordinator").await, &mission)
        .await
        .expect("mission")
        .mission
        .request_id;
    let pages = [
        format!("/requests/{request}"),
        format!("/missions/{mission}"),
        format!("/cases/{}", case.case.id),
        format!("/cases/{}/findings", case.case.id),
        format!("/cases/{}/timeline", case.case.id),
    ];
    // status per page for: coordinator, requester (own), other requester,
    // responder (not on the team), partner.
    let expected: [(&str, [u16; 5]); 5] = [
        ("coordinator", [200, 200, 200, 200, 200]),
        ("requester", [200, 200, 200, 200, 200]),
        ("other_requester", [404, 404, 404, 404, 404]),
        ("responder", [404, 404, 404, 404, 404]),
        ("partner", [404, 404, 404, 404, 404]),
    ];
    for (key, codes) in expected {
        let cookie = sign_in(&f, key).await;
        for (path, code) in pages.iter().zip(codes) {
            let (status, page) = get(&cookie, format!("{}{path}", f.base)).await;
            assert_eq!(status.as_u16(), code, "{key} on {path}");
            if code == 404 {
                assert!(
                    !page.contains("File servers") && !page.contains("Wiper on file servers"),
                    "{key} learns nothing of {path}"
                );
            }
        }
    }
    for (key, path, code) in [
        ("requester", "/audit", 403),
        ("coordinator", "/audit", 403),
        ("admin", "/audit", 200),
        ("responder", "/roster", 403),
        ("coordinator", "/roster", 200),
        ("requester", "/rulepacks", 403),
        ("partner", "/missions", 403),
        ("requester", "/requests/new", 200),
        ("coordinator", "/requests/new", 403),
    ] {
        let cookie = sign_in(&f, key).await;
        let (status, _) = get(&cookie, format!("{}{path}", f.base)).await;
        assert_eq!(status.as_u16(), code, "{key} on {path}");
    }

    // Writing into a case one may not see changes nothing.
    let cookie = sign_in(&f, "other_requester").await;
    let (_, page) = get(&cookie, format!("{}/dashboard", f.base)).await;
    let response = post(
        &cookie,
        format!("{}/cases/{}/notes", f.base, case.case.id),
        &[("_csrf", &csrf_of(&page)), ("markdown", "intrusion")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let view = f
        .platform
        .case(&f.actor("coordinator").await, &case.case.id)
        .await
        .expect("case");
    assert!(view.notes.is_empty());
}

#[tokio::test]
async fn user_text_is_escaped_on_every_page() {
    let f = Fixture::start("sqlite").await;
    let requester = f.actor("requester").await;
    let mut hostile = new_request();
    hostile.summary = "<script>alert(1)</script><img src=x onerror=alert(2)>".into();
    f.platform
        .file_request(&requester, hostile)
        .await
        .expect("filed");
    let case = f.case().await;
    f.platform
        .add_note(
            &f.actor("coordinator").await,
            &case.case.id,
            "<script>alert(3)</script>\n\n[x](javascript:alert(4)) <b onmouseover=alert(5)>hi</b>",
        )
        .await
        .expect("note");
    let cookie = sign_in(&f, "coordinator").await;
    for path in [
        "/dashboard".to_owned(),
        "/requests".to_owned(),
        format!("/cases/{}", case.case.id),
        format!("/cases/{}/timeline", case.case.id),
    ] {
        let (status, page) = get(&cookie, format!("{}{path}", f.base)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        for bad in [
            "<script>alert",
            "<img src=x",
            "href=\"javascript",
            "<b onmouseover",
        ] {
            let at = page.find(bad).unwrap_or(0);
            assert!(
                !page.contains(bad),
                "{path} carries {bad:?} as markup: {}",
                &page[at.saturating_sub(200)..(at + 100).min(page.len())]
            );
        }
    }
    let (_, page) = get(&cookie, format!("{}/requests", f.base)).await;
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn browser_uploads_are_checked_streamed_and_contained() {
    let f = Fixture::start("sqlite").await;
    let case = f.case().await;
    let cookie = sign_in(&f, "coordinator").await;
    let url = format!("{}/cases/{}/evidence", f.base, case.case.id);
    let (_, page) = get(&cookie, format!("{}/cases/{}", f.base, case.case.id)).await;
    let token = csrf_of(&page);
    let multipart = |csrf: &str, name: &str, content: &str| {
        let boundary = "crrtboundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{content}\r\n--{boundary}--\r\n"
        );
        browser()
            .post(&url)
            .header(COOKIE, &cookie)
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
    };
    let response = multipart("0000", "x.log", "data")
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "CSRF first");

    let response = multipart(&token, "../../etc/passwd", "root:x:0:0")
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let stored = f
        .platform
        .case_evidence(
            &f.actor("coordinator").await,
            &case.case.id,
            crrt_platform::Page {
                limit: 10,
                offset: 0,
            },
        )
        .await
        .expect("list");
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].name.contains('/') && !stored[0].name.contains(".."),
        "the name is contained: {}",
        stored[0].name
    );
    assert!(!f.dir.path().join("etc/passwd").exists());

    // The same content again is refused; a truncated body stores nothing.
    let response = multipart(&token, "again.txt", "root:x:0:0")
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let flash = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("crrt_flash=error"))
        .map(str::to_owned);
    assert!(flash.is_some(), "a duplicate is reported as a problem");
    let truncated = format!(
        "--b\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n\
         --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\npartial"
    );
    let response = browser()
        .post(&url)
        .header(COOKIE, &cookie)
        .header(CONTENT_TYPE, "multipart/form-data; boundary=b")
        .body(truncated)
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let stored = f
        .platform
        .case_evidence(
            &f.actor("coordinator").await,
            &case.case.id,
            crrt_platform::Page {
                limit: 10,
                offset: 0,
            },
        )
        .await
        .expect("list");
    assert_eq!(stored.len(), 1, "nothing partial was kept");
    let incoming = f.dir.path().join("evidence/.incoming");
    let leftovers = std::fs::read_dir(&incoming).map_or(0, |d| d.count());
    assert_eq!(leftovers, 0, "no half-written file remains");
}

#[tokio::test]
async fn field_findings_are_imported_from_the_browser() {
    let f = Fixture::start("sqlite").await;
    let case = f.case().await;
    let cookie = sign_in(&f, "responder").await;
    // The responder is not on the team: the import is refused unseen.
    let (_, page) = get(&cookie, format!("{}/dashboard", f.base)).await;
    let line = r#"{"timestamp":"2022-02-23T16:00:00Z","host":"DC01","channel":"Security","event_id":4688,"record_id":7,"rule_id":null,"rule_title":"Whoami","level":"medium","tags":[],"evidence_file":"dc01.evtx","event":{"CommandLine":"whoami"}}"#;
    let upload = |cookie: &str, csrf: &str, content: &str| {
        let body = format!(
            "--b\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
             --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"field.jsonl\"\r\n\r\n{content}\r\n--b--\r\n"
        );
        browser()
            .post(format!("{}/cases/{}/findings/import", f.base, case.case.id))
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, "multipart/form-data; boundary=b")
            .body(body)
            .send()
    };
    let response = upload(&cookie, &csrf_of(&page), line).await.expect("HTTP");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let cookie = sign_in(&f, "coordinator").await;
    let (_, page) = get(&cookie, format!("{}/cases/{}", f.base, case.case.id)).await;
    let token = csrf_of(&page);
    // One bad line refuses the whole file.
    let response = upload(&cookie, &token, &format!("{line}\nnot json\n"))
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let coordinator = f.actor("coordinator").await;
    let all = crrt_platform::Page {
        limit: 10,
        offset: 0,
    };
    let findings = f
        .platform
        .findings(&coordinator, &case.case.id, all)
        .await
        .expect("findings");
    assert!(findings.is_empty(), "all lines or none");
    for _ in 0..2 {
        let response = upload(&cookie, &token, line).await.expect("HTTP");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let findings = f
        .platform
        .findings(&coordinator, &case.case.id, all)
        .await
        .expect("findings");
    assert_eq!(findings.len(), 1, "imported once, however often sent");
    assert_eq!(findings[0].evidence_file, "dc01.evtx");
}

#[tokio::test]
async fn the_watch_board_adds_shows_and_removes_targets_for_the_team_only() {
    let f = Fixture::start("sqlite").await;
    let mission = f.mission().await.id;
    let coordinator = sign_in(&f, "coordinator").await;
    let board = format!("{}/missions/{mission}/watch", f.base);
    let (status, page) = get(&coordinator, board.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("No websites watched yet.") && page.contains("Start watching"),
        "{page}"
    );
    let token = csrf_of(&page);

    // A mistake comes back as a message and adds nothing.
    let response = post(
        &coordinator,
        board.clone(),
        &[
            ("_csrf", &token),
            ("name", "mfa"),
            ("url", "ftp://mfa.gov.ua/"),
            ("interval", "60s"),
        ],
    )
    .await;
    let (_, page) = get(&with_flash(&coordinator, &response), board.clone()).await;
    assert!(
        page.contains("http:// or https://") && page.contains("No websites watched yet."),
        "{page}"
    );

    let response = post(
        &coordinator,
        board.clone(),
        &[
            ("_csrf", &token),
            ("name", "mfa <b>"),
            ("url", "http://127.0.0.1:9/"),
            ("interval", "5m"),
            ("timeout", "5s"),
            ("expect_status", "200"),
            ("must_contain", "Міністерство"),
            ("dns_a", "true"),
        ],
    )
    .await;
    let (_, page) = get(&with_flash(&coordinator, &response), board.clone()).await;
    assert!(
        page.contains("Watching mfa &lt;b&gt;") && page.contains("unchecked"),
        "{page}"
    );
    assert!(
        page.contains("data-refresh=\"30\""),
        "the board refreshes itself"
    );
    let (status, targets) = f
        .call(
            "coordinator",
            reqwest::Method::GET,
            &format!("/api/v1/missions/{mission}/watch"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        targets[0]["settings"],
        serde_json::json!({"interval": "5m", "timeout": "5s", "expect_status": 200, "must_contain": ["Міністерство"], "dns": ["A"]})
    );
    let target = targets[0]["id"].as_str().expect("id").to_owned();

    // Notifications: a short secret is refused; then saved, and never shown back.
    let response = post(
        &coordinator,
        format!("{board}/notifications"),
        &[
            ("_csrf", &token),
            ("webhook_url", "https://hooks.example/crrt"),
            ("webhook_secret", "short"),
            ("emails", ""),
        ],
    )
    .await;
    let (_, page) = get(&with_flash(&coordinator, &response), board.clone()).await;
    assert!(page.contains("at least 16 characters"), "{page}");
    let response = post(
        &coordinator,
        format!("{board}/notifications"),
        &[
            ("_csrf", &token),
            ("webhook_url", "https://hooks.example/crrt"),
            ("webhook_secret", "a secret of the team"),
            ("emails", "duty@cert.example\nanna@cert.ee"),
        ],
    )
    .await;
    let (_, page) = get(&with_flash(&coordinator, &response), board.clone()).await;
    assert!(
        page.contains("Notifications saved.")
            && page.contains("anna@cert.ee")
            && page.contains("leave empty to keep it"),
        "{page}"
    );
    assert!(!page.contains("a secret of the team"));

    // The victim institution sees the board but not the forms; outsiders see nothing.
    let requester = sign_in(&f, "requester").await;
    let (status, page) = get(&requester, board.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("mfa &lt;b&gt;")
            && !page.contains("Start watching")
            && !page.contains("Stop watching")
    );
    for key in ["other_requester", "partner", "responder"] {
        let cookie = sign_in(&f, key).await;
        let (status, page) = get(&cookie, board.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{key}: {page}");
        assert!(!page.contains("mfa"), "{key}");
    }
    let response = post(
        &requester,
        format!("{}/watch/targets/{target}/remove", f.base),
        &[(
            "_csrf",
            &csrf_of(&get(&requester, format!("{}/dashboard", f.base)).await.1),
        )],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        f.platform
            .store()
            .watch_targets(&mission)
            .await
            .expect("targets")
            .len(),
        1,
        "the requester removed nothing"
    );

    let response = post(
        &coordinator,
        format!("{}/watch/targets/{target}/remove", f.base),
        &[("_csrf", &token)],
    )
    .await;
    let (_, page) = get(&with_flash(&coordinator, &response), board).await;
    assert!(
        page.contains("No longer watched.") && page.contains("No websites watched yet."),
        "{page}"
    );
}

#[tokio::test]
async fn the_reports_page_links_every_format_and_takes_the_teams_recommendations() {
    let f = Fixture::start("sqlite").await;
    let mission = f.mission().await.id;
    let coordinator = sign_in(&f, "coordinator").await;
    let reports = format!("{}/missions/{mission}/reports", f.base);
    let (status, page) = get(&coordinator, reports.clone()).await;
    assert_eq!(status, StatusCode::OK);
    for link in [
        "/reports/final?format=pdf",
        "/reports/situation?format=md",
        "Issue this situation report",
    ] {
        assert!(page.contains(link), "{link} missing from:\n{page}");
    }
    let token = csrf_of(&page);
    let response = post(
        &coordinator,
        format!("{reports}/recommendations"),
        &[
            ("_csrf", &token),
            ("markdown", "Patch <script>alert(1)</script> **now**"),
        ],
    )
    .await;
    let (_, page) = get(&with_flash(&coordinator, &response), reports.clone()).await;
    assert!(page.contains("Recommendations saved"), "{page}");
    let response = post(
        &coordinator,
        format!("{reports}/situation"),
        &[("_csrf", &token)],
    )
    .await;
    let (_, page) = get(&with_flash(&coordinator, &response), reports.clone()).await;
    assert!(page.contains("Situation report issued"), "{page}");

    // The institution reads the recommendations, rendered and escaped, and has no forms.
    let requester = sign_in(&f, "requester").await;
    let (status, page) = get(&requester, reports.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<strong>now</strong>") && !page.contains("<script>alert"),
        "{page}"
    );
    assert!(!page.contains("Issue this situation report") && !page.contains("<textarea"));
    // The HTML report itself, under the same session.
    let (status, html) = get(
        &requester,
        format!(
            "{}/api/v1/missions/{mission}/reports/final?format=html",
            f.base
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<strong>now</strong>") && !html.contains("<script>alert"));
    // Others: no mission, no reports.
    let partner = sign_in(&f, "partner").await;
    assert_eq!(get(&partner, reports).await.0, StatusCode::NOT_FOUND);
}

/// The session cookie plus the flash message a redirect set, as a browser sends them next.
fn with_flash(cookie: &str, response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let flash = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("crrt_flash="))
        .expect("a flash message");
    format!("{cookie}; {}", flash.split(';').next().expect("pair"))
}
