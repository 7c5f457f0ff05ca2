//! The TAXII 2.1 server driven by the OASIS Python client, `taxii2-client`,
//! as a partner would use it: discovery, collections, reading what TLP
//! allows, submitting to the inbox, pages, versions, manifest, delete,
//! status, and the error answers (401, 403, 404, 406, 415).
//!
//! Needs `pip install taxii2-client`; without it the test says it skips,
//! and fails under `CI=true`.

mod common;

use std::process::Command;

use common::*;
use reqwest::Method;
use serde_json::json;

fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let message =
            format!("SKIPPED: python3 module {module} is missing (pip install taxii2-client)");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("{message}");
    }
    ok
}

const SCRIPT: &str = r#"
import json, sys, time
import requests
from taxii2client.v21 import Server, Collection, as_pages
from taxii2client.exceptions import TAXIIServiceException

base, email, password, token, other_email = sys.argv[1:6]
TAXII = "application/taxii+json;version=2.1"

server = Server(base + "/taxii2/", user=email, password=password)
assert server.title == "CRRT TAXII 2.1", server.title
root = server.api_roots[0]
assert TAXII in root.versions
by_title = {c.title: c for c in root.collections}
shared = by_title["Indicators shared through CRRT"]
inbox = by_title["Your submissions"]
assert shared.can_read and not shared.can_write
assert inbox.can_read and inbox.can_write

# Shared: exactly what the partner's TLP allows.
seen = sorted(o["pattern"] for o in shared.get_objects().get("objects", []))
print("shared:", seen)
assert seen == ["[domain-name:value = 'amber-for-vendor.example']",
                "[domain-name:value = 'clear.example']",
                "[domain-name:value = 'green.example']"], seen

# One shared object by its id, and its versions.
first_shared = shared.get_objects()["objects"][0]
one = shared.get_object(first_shared["id"])
assert [o["id"] for o in one["objects"]] == [first_shared["id"]], one
assert len(shared.object_versions(first_shared["id"])["versions"]) == 1
try:
    shared.get_object("indicator--6f7e4a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b")
    raise AssertionError("an unknown shared object was served")
except requests.exceptions.HTTPError as e:
    assert e.response.status_code == 404

def indicator(n, modified="2022-02-24T06:00:00.000Z"):
    return {"type": "indicator", "spec_version": "2.1",
            "id": "indicator--%08d-1111-4111-8111-111111111111" % n,
            "created": "2022-02-24T06:00:00.000Z", "modified": modified,
            "pattern": "[ipv4-addr:value = '198.51.100.%d']" % n, "pattern_type": "stix",
            "valid_from": "2022-02-24T06:00:00Z"}

envelope = {"objects": [indicator(1), indicator(2), indicator(3), {"spec_version": "2.1"}]}
status = inbox.add_objects(envelope)
assert status.status == "complete", status.status
assert (status.success_count, status.failure_count, status.pending_count) == (3, 1, 0), status._raw
# The status resource can be read again.
status.refresh()
assert status.total_count == 4

everything = inbox.get_objects()
assert len(everything["objects"]) == 3 and everything["more"] is False, everything
pages = list(as_pages(inbox.get_objects, per_request=2))
assert [len(p.get("objects", [])) for p in pages] == [2, 1], [len(p.get("objects", [])) for p in pages]
assert pages[0]["more"] is True and pages[0]["next"]

# A second version of one object.
status = inbox.add_objects({"objects": [indicator(1, modified="2022-02-25T06:00:00.000Z")]})
assert status.success_count == 1
one = inbox.get_object("indicator--00000001-1111-4111-8111-111111111111")
assert [o["modified"] for o in one["objects"]] == ["2022-02-25T06:00:00.000Z"], one
both = inbox.get_object("indicator--00000001-1111-4111-8111-111111111111", version="all")
assert len(both["objects"]) == 2, both
first = inbox.get_object("indicator--00000001-1111-4111-8111-111111111111", version="first")
assert [o["modified"] for o in first["objects"]] == ["2022-02-24T06:00:00.000Z"], first
versions = inbox.object_versions("indicator--00000001-1111-4111-8111-111111111111")
assert versions["versions"] == ["2022-02-24T06:00:00.000Z", "2022-02-25T06:00:00.000Z"], versions

manifest = inbox.get_manifest()
assert len(manifest["objects"]) == 3, manifest
assert all(m["media_type"] == "application/stix+json;version=2.1" for m in manifest["objects"])

# Filters.
assert len(inbox.get_objects(type="indicator")["objects"]) == 3
assert "objects" not in inbox.get_objects(type="malware")
picked = inbox.get_objects(id="indicator--00000002-1111-4111-8111-111111111111")
assert len(picked["objects"]) == 1
later = inbox.get_objects(added_after="2100-01-01T00:00:00Z")
assert "objects" not in later, later
r = requests.get(inbox.url + "objects/", auth=(email, token), headers={"Accept": TAXII})
assert r.headers["X-TAXII-Date-Added-First"] <= r.headers["X-TAXII-Date-Added-Last"]

# Filters take comma-separated lists; versions and spec versions filter too.
one_id = "indicator--00000001-1111-4111-8111-111111111111"
two_ids = one_id + ",indicator--00000002-1111-4111-8111-111111111111"
assert len(inbox.get_objects(id=two_ids)["objects"]) == 2
assert len(inbox.get_objects(type="malware,indicator")["objects"]) == 3
assert len(inbox.get_objects(id=one_id, version="first,last")["objects"]) == 2
exact = inbox.get_objects(id=one_id, version="2022-02-24T06:00:00.000Z")["objects"]
assert [o["modified"] for o in exact] == ["2022-02-24T06:00:00.000Z"], exact
assert "objects" not in inbox.get_objects(spec_version="2.0")
assert len(inbox.get_objects(spec_version="2.1")["objects"]) == 3

# Every list endpoint pages, with the date-added headers: by `next` where
# the resource has one, by `added_after` (the last page's
# X-TAXII-Date-Added-Last) for versions, whose resource has none.
for url, key, params in [
    (inbox.url + "manifest/", "objects", {"limit": "1"}),
    (inbox.url + "objects/" + one_id + "/versions/", "versions", {"limit": "1"}),
    (inbox.url + "objects/" + one_id + "/", "objects", {"limit": "1", "match[version]": "all"}),
]:
    r = requests.get(url, params=params, auth=(email, token), headers={"Accept": TAXII})
    page = r.json()
    assert r.status_code == 200 and len(page[key]) == 1 and page["more"] is True, (url, r.text)
    assert r.headers["Content-Type"] == TAXII, url
    assert r.headers["X-TAXII-Date-Added-First"] <= r.headers["X-TAXII-Date-Added-Last"], url
    after = ({"next": page["next"]} if "next" in page
             else {"added_after": r.headers["X-TAXII-Date-Added-Last"]})
    rest = requests.get(url, params={**params, **after}, auth=(email, token),
                        headers={"Accept": TAXII}).json()
    assert rest[key] and rest[key] != page[key], (url, rest)

# The media type without its version means the latest, 2.1.
r = requests.get(base + "/taxii2/", auth=(email, token), headers={"Accept": "application/taxii+json"})
assert r.status_code == 200, r.status_code

# Delete one version, then a whole object.
inbox.delete_object(one_id, version="first")
assert inbox.object_versions(one_id)["versions"] == ["2022-02-25T06:00:00.000Z"]
inbox.delete_object("indicator--00000003-1111-4111-8111-111111111111")
try:
    inbox.get_object("indicator--00000003-1111-4111-8111-111111111111")
    raise AssertionError("a deleted object is still served")
except requests.exceptions.HTTPError as e:
    assert e.response.status_code == 404

# Another organisation does not see the partner's inbox.
other = Collection(inbox.url, user=other_email, password=password)
assert "objects" not in other.get_objects(), "another organisation's submissions leaked"

# Token auth: Bearer, and a token as the Basic password.
for headers, auth in [({"Authorization": "Bearer " + token}, None), ({}, ("anyone", token))]:
    r = requests.get(base + "/taxii2/", headers={"Accept": TAXII, **headers}, auth=auth)
    assert r.status_code == 200, r.status_code

# Errors, in the TAXII error format.
def error(method, url, code, **kw):
    r = requests.request(method, url, **kw)
    assert r.status_code == code, (method, url, r.status_code, r.text)
    assert r.headers["Content-Type"] == TAXII, r.headers["Content-Type"]
    body = r.json()
    assert body["http_status"] == str(code) and body["title"], body

error("GET", base + "/taxii2/", 401, headers={"Accept": TAXII})
error("GET", base + "/taxii2/", 401, headers={"Accept": TAXII}, auth=(email, "wrong password"))
error("GET", base + "/taxii2/", 406, headers={"Accept": "application/json"}, auth=(email, token))
error("GET", base + "/taxii2/", 406, headers={"Accept": "application/taxii+json;version=2.0"}, auth=(email, token))
error("POST", inbox.url + "objects/", 415, auth=(email, token), data=json.dumps(envelope),
      headers={"Accept": TAXII, "Content-Type": "application/json"})
error("POST", shared.url + "objects/", 403, auth=(email, token), data=json.dumps(envelope),
      headers={"Accept": TAXII, "Content-Type": TAXII})
error("GET", base + "/taxii2/crrt/collections/00000000-0000-4000-8000-000000000000/", 404,
      auth=(email, token), headers={"Accept": TAXII})
error("GET", base + "/taxii2/elsewhere/", 404, auth=(email, token), headers={"Accept": TAXII})
error("GET", inbox.url + "objects/indicator--99999999-1111-4111-8111-111111111111/", 404,
      auth=(email, token), headers={"Accept": TAXII})
error("GET", base + "/taxii2/crrt/status/not-a-status/", 404, auth=(email, token), headers={"Accept": TAXII})
# An envelope over the API root's max_content_length is refused whole.
before = len(inbox.get_manifest().get("objects", []))
too_big = json.dumps({"objects": [indicator(9)], "pad": "x" * root.max_content_length})
error("POST", inbox.url + "objects/", 413, auth=(email, token), data=too_big,
      headers={"Accept": TAXII, "Content-Type": TAXII})
assert len(inbox.get_manifest().get("objects", [])) == before
error("POST", inbox.url + "objects/", 400, auth=(email, token), data="{not json",
      headers={"Accept": TAXII, "Content-Type": TAXII})
for bad in [{"limit": "0"}, {"limit": "many"}, {"added_after": "yesterday"}, {"next": "not-a-cursor"}]:
    error("GET", inbox.url + "objects/", 400, params=bad, auth=(email, token), headers={"Accept": TAXII})
print("OK")
"#;

#[tokio::test]
async fn a_partner_uses_the_taxii_server_with_taxii2_client() {
    if !python_has("taxii2client") {
        return;
    }
    for backend in crrt_store::testing::backends() {
        a_partner_on(backend).await;
    }
}

async fn a_partner_on(backend: &str) {
    let mut f = Fixture::start(backend).await;
    // NCSC-LT shares one indicator per level; AMBER names the partner.
    for (value, tlp, extra) in [
        ("clear.example", "clear", json!({})),
        ("green.example", "green", json!({})),
        (
            "amber-for-vendor.example",
            "amber",
            json!({"recipient_orgs": ["Vendor"]}),
        ),
        ("amber-not-for-vendor.example", "amber", json!({})),
        ("strict.example", "amber+strict", json!({})),
        (
            "red.example",
            "red",
            json!({"recipient_users": ["coordinator@example.org"]}),
        ),
    ] {
        let mut body = json!({"value": value, "tlp": tlp});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, answer) = f
            .call("responder", Method::POST, "/api/v1/indicators", Some(body))
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{answer}");
    }
    let out = tokio::task::spawn_blocking({
        let base = f.base.clone();
        let token = f.tokens["partner"].clone();
        move || {
            Command::new("python3")
                .args(["-c", SCRIPT])
                .args([
                    base.as_str(),
                    "partner@example.org",
                    PASSWORD,
                    token.as_str(),
                    "coordinator@example.org",
                ])
                .output()
                .expect("python3 runs")
        }
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "{backend}: taxii2-client run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The partner's submitted indicators reached the member-state teams
    // (TLP:AMBER by default, addressed to them), with the partner as source,
    // and nobody else.
    let mut seen = serde_json::Value::Null;
    for _ in 0..50 {
        seen = f
            .call(
                "coordinator",
                Method::GET,
                "/api/v1/indicators?q=198.51.100",
                None,
            )
            .await
            .1;
        if seen["items"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let items = seen["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{seen}");
    assert!(
        items
            .iter()
            .all(|i| i["source"] == "Vendor" && i["tlp"] == "amber")
    );
    let (_, hidden) = f
        .call(
            "requester",
            Method::GET,
            "/api/v1/indicators?q=198.51.100",
            None,
        )
        .await;
    assert_eq!(hidden["items"].as_array().map(Vec::len), Some(0));

    // They are addressed to the member-state teams as a group: a team that
    // joins later reads them too, a second partner does not, on the list,
    // the count and the single indicator alike; the source sees the teams
    // named.
    for (org, kind, key, role) in [
        ("CERT-EE", "member", "late_member", "responder"),
        ("Vendor Two", "partner", "second_partner", "partner"),
    ] {
        let (status, body) = f
            .call(
                "admin",
                Method::POST,
                "/api/v1/organisations",
                Some(json!({"name": org, "kind": kind, "country": "EE"})),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        let email = format!("{key}@example.org");
        let (status, body) = f
            .call(
                "admin",
                Method::POST,
                "/api/v1/users",
                Some(json!({"email": email, "org": org, "role": role})),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        let (status, body) = f
            .call(
                "admin",
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": "test", "email": email})),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        let secret = body["secret"].as_str().expect("secret").to_owned();
        f.tokens.insert(key, secret);
    }
    let id = items[0]["id"].as_str().expect("id");
    for (key, visible) in [("late_member", true), ("second_partner", false)] {
        let (_, list) = f
            .call(key, Method::GET, "/api/v1/indicators?q=198.51.100", None)
            .await;
        let n = if visible { 3 } else { 0 };
        assert_eq!(
            list["items"].as_array().map(Vec::len),
            Some(n),
            "{key}: {list}"
        );
        let (_, count) = f
            .call(
                key,
                Method::GET,
                "/api/v1/indicators/count?q=198.51.100",
                None,
            )
            .await;
        assert_eq!(count["count"], json!(n), "{key}: {count}");
        let (status, _) = f
            .call(key, Method::GET, &format!("/api/v1/indicators/{id}"), None)
            .await;
        let expected = if visible { 200 } else { 404 };
        assert_eq!(status.as_u16(), expected, "{key} reading {id}");
    }
    let (_, one) = f
        .call(
            "partner",
            Method::GET,
            &format!("/api/v1/indicators/{id}"),
            None,
        )
        .await;
    let mut named: Vec<&str> = one["recipient_orgs"]
        .as_array()
        .expect("recipients")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    named.sort_unstable();
    assert_eq!(named, ["CERT-EE", "NCSC-LT"], "{one}");
    // Editing the description keeps the group; naming teams replaces it.
    let path = format!("/api/v1/indicators/{id}");
    for (change, late_member_sees) in [
        (json!({"description": "C2 of the wiper"}), 200),
        (json!({"recipient_orgs": ["NCSC-LT"]}), 404),
    ] {
        let (_, now) = f.call("partner", Method::GET, &path, None).await;
        let mut change = change;
        change["version"] = now["version"].clone();
        let (status, body) = f.call("partner", Method::POST, &path, Some(change)).await;
        assert_eq!(status.as_u16(), 200, "{body}");
        let (status, _) = f.call("late_member", Method::GET, &path, None).await;
        assert_eq!(status.as_u16(), late_member_sees, "{body}");
        let (status, _) = f.call("coordinator", Method::GET, &path, None).await;
        assert_eq!(status.as_u16(), 200);
    }
}
