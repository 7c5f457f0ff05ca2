//! Webhooks to a real receiver on loopback: signed, in order, retried after a
//! failure, each alert delivered once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use crrt_watch::notify::{SIGNATURE_HEADER, signature};
use crrt_watch::{AlertEvent, AlertKind, Change, Notifier, Webhook};

const SECRET: &str = "a shared secret of the team";

#[derive(Clone, Default)]
struct Receiver {
    /// Bodies whose signature was right, in arrival order.
    accepted: Arc<Mutex<Vec<serde_json::Value>>>,
    attempts: Arc<Mutex<u32>>,
    forged: Arc<Mutex<u32>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let attempt = {
        let mut attempts = receiver.attempts.lock().expect("attempts");
        *attempts += 1;
        *attempts
    };
    // The receiver is briefly down: the first delivery fails.
    if attempt == 1 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if signed != signature(SECRET, &body) {
        *receiver.forged.lock().expect("forged") += 1;
        return StatusCode::UNAUTHORIZED;
    }
    receiver
        .accepted
        .lock()
        .expect("accepted")
        .push(serde_json::from_slice(&body).expect("json"));
    StatusCode::NO_CONTENT
}

fn event(change: Change, kind: AlertKind) -> AlertEvent {
    let now = jiff::Timestamp::now();
    AlertEvent {
        time: now,
        event: change,
        target: "mfa".into(),
        url: "https://mfa.gov.ua/".into(),
        kind,
        summary: "visible text 3% like the baseline".into(),
        reasons: vec!["visible text 3% like the baseline".into()],
        opened: now,
        flapping: false,
        evidence: None,
    }
}

#[tokio::test]
async fn alerts_arrive_signed_in_order_once_each_despite_a_failing_first_attempt() {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });

    let hook = Webhook {
        url: format!("http://{address}/hook").parse().expect("url"),
        secret: SECRET.into(),
    };
    let notifier = Notifier::start(&[hook]).expect("notifier");
    notifier.send(&event(Change::Open, AlertKind::Defacement));
    notifier.send(&event(Change::Open, AlertKind::Down));
    notifier.send(&event(Change::Close, AlertKind::Defacement));

    for _ in 0..100 {
        if receiver.accepted.lock().expect("accepted").len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted = receiver.accepted.lock().expect("accepted").clone();
    let order: Vec<_> = accepted
        .iter()
        .map(|body| (body["event"].as_str(), body["kind"].as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (Some("open"), Some("defacement")),
            (Some("open"), Some("down")),
            (Some("close"), Some("defacement"))
        ]
    );
    assert_eq!(
        *receiver.attempts.lock().expect("attempts"),
        4,
        "one retry, no duplicates"
    );
    assert_eq!(*receiver.forged.lock().expect("forged"), 0);
    assert_eq!(accepted[0]["target"], "mfa");
    assert_eq!(accepted[0]["summary"], "visible text 3% like the baseline");
}

#[test]
fn the_signature_is_the_hmac_sha256_of_the_body() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
