//! A name server on loopback whose answers change, as a hijacked zone's do:
//! the target's DNS alert opens with what changed and closes when the
//! answers are back.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crrt_watch::dns::RecordKind;
use crrt_watch::{AlertEvent, AlertKind, Change, Fetcher, Monitor, Phrases, Target};
use hickory_resolver::proto::op::{Message, OpCode};
use hickory_resolver::proto::rr::rdata::{A, MX, NS};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

/// The zone as the name server serves it now.
#[derive(Debug, Clone)]
struct Zone {
    a: Vec<Ipv4Addr>,
    ns: Vec<&'static str>,
    mx: Vec<&'static str>,
}

async fn name_server(zone: Arc<Mutex<Zone>>) -> std::net::SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = socket.local_addr().expect("address");
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        loop {
            let Ok((length, peer)) = socket.recv_from(&mut buffer).await else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buffer[..length]) else {
                continue;
            };
            let mut response = Message::response(query.metadata.id, OpCode::Query);
            response.metadata.authoritative = true;
            response.metadata.recursion_available = true;
            let zone = zone.lock().expect("zone").clone();
            for question in &query.queries {
                let name = question.name().clone();
                let name_of = |text: &str| Name::from_ascii(text).expect("name");
                let records: Vec<RData> = match question.query_type() {
                    RecordType::A => zone.a.iter().map(|ip| RData::A(A(*ip))).collect(),
                    RecordType::NS => zone
                        .ns
                        .iter()
                        .map(|ns| RData::NS(NS(name_of(ns))))
                        .collect(),
                    RecordType::MX => zone
                        .mx
                        .iter()
                        .map(|mx| RData::MX(MX::new(10, name_of(mx))))
                        .collect(),
                    _ => Vec::new(),
                };
                response.add_query(question.clone());
                for data in records {
                    // No caching: every check asks again.
                    response.add_answer(Record::from_rdata(name.clone(), 0, data));
                }
            }
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    address
}

fn dns_events(events: Vec<AlertEvent>) -> Vec<AlertEvent> {
    events
        .into_iter()
        .filter(|event| event.kind == AlertKind::Dns)
        .collect()
}

#[tokio::test]
async fn a_hijacked_zone_opens_a_dns_alert_naming_the_new_records() {
    let zone = Arc::new(Mutex::new(Zone {
        a: vec![Ipv4Addr::new(192, 0, 2, 10)],
        ns: vec!["ns1.gov.ua.", "ns2.gov.ua."],
        mx: vec!["mail.mfa.gov.ua."],
    }));
    let server = name_server(zone.clone()).await;
    let mut target = Target::new("mfa", "http://127.0.0.1:9/".parse().expect("url"));
    // The page is not what this test is about; its checks fail fast.
    target.timeout = Duration::from_millis(200);
    target.url.set_host(Some("mfa.gov.ua")).expect("host");
    target.dns = vec![RecordKind::A, RecordKind::Ns, RecordKind::Mx];
    target.dns_server = Some(server);
    let target = Arc::new(target);
    let fetcher = Fetcher::new();
    let mut monitor = Monitor::new(target.clone(), Arc::new(Phrases::bundled()));
    let mut check = async || dns_events(monitor.observe(&fetcher.check(&target).await));

    assert!(check().await.is_empty());
    assert!(check().await.is_empty());
    {
        let mut zone = zone.lock().expect("zone");
        zone.a = vec![Ipv4Addr::new(203, 0, 113, 66)];
        zone.ns = vec!["ns1.attacker.example."];
    }
    assert!(check().await.is_empty(), "one look is not yet a change");
    let opened = check().await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0].event, Change::Open);
    assert_eq!(
        opened[0].reasons,
        [
            "A changed, new 203.0.113.66, gone 192.0.2.10",
            "NS changed, new ns1.attacker.example., gone ns1.gov.ua. ns2.gov.ua."
        ]
    );
    {
        let mut zone = zone.lock().expect("zone");
        zone.a = vec![Ipv4Addr::new(192, 0, 2, 10)];
        zone.ns = vec!["ns2.gov.ua.", "ns1.gov.ua."];
    }
    assert!(check().await.is_empty());
    let closed = check().await;
    assert_eq!(
        closed.iter().map(|event| event.event).collect::<Vec<_>>(),
        [Change::Close]
    );
}
