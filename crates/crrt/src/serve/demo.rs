//! `crrt serve --demo`: a realistic exercise so a newcomer sees a working
//! platform at once. A team modelled on the EU CRRT (a lead nation and five
//! member-state teams), a Ukrainian ministry asking for help on 24 February
//! 2022, a partner vendor, and their requests.

use anyhow::Result;
use crrt_platform::{
    Actor, Availability, ChecklistUpdate, Decision, MissionStatus, NewCase, NewOrg, NewRequest,
    NewUser, OrgKind, Platform, Position, Role, Skill, TaskUpdate, Tlp, Urgency,
};

/// Every demo account's password: this is a demonstration on a local data
/// directory, and the accounts are printed anyway.
pub const DEMO_PASSWORD: &str = "crrt-demo-2022";

const LEAD: &str = "NCSC-LT (lead nation)";

struct Person {
    email: &'static str,
    name: &'static str,
    org: &'static str,
    role: Role,
    skills: &'static [Skill],
    languages: &'static [&'static str],
}

const ORGS: &[(&str, OrgKind, &str)] = &[
    (LEAD, OrgKind::Member, "LT"),
    ("CERT-EE", OrgKind::Member, "EE"),
    ("CERT.hr", OrgKind::Member, "HR"),
    ("NCSC-NL", OrgKind::Member, "NL"),
    ("CERT Polska", OrgKind::Member, "PL"),
    ("CERT-RO", OrgKind::Member, "RO"),
    (
        "Ministry of Digital Transformation",
        OrgKind::Requester,
        "UA",
    ),
    ("Northwind Threat Research", OrgKind::Partner, "US"),
];

const PEOPLE: &[Person] = &[
    Person {
        email: "admin@crrt.example",
        name: "Platform Administrator",
        org: LEAD,
        role: Role::Admin,
        skills: &[],
        languages: &["en", "lt"],
    },
    Person {
        email: "rasa@ncsc.lt",
        name: "Rasa Petrauskienė",
        org: LEAD,
        role: Role::Coordinator,
        skills: &[Skill::LegalCommunication, Skill::ThreatIntelligence],
        languages: &["lt", "en", "ru"],
    },
    Person {
        email: "tomas@ncsc.lt",
        name: "Tomas Kazlauskas",
        org: LEAD,
        role: Role::Responder,
        skills: &[Skill::Network, Skill::Web],
        languages: &["lt", "en"],
    },
    Person {
        email: "kadri@cert.ee",
        name: "Kadri Tamm",
        org: "CERT-EE",
        role: Role::Responder,
        skills: &[Skill::Forensics, Skill::MalwareAnalysis],
        languages: &["et", "en", "ru"],
    },
    Person {
        email: "ivan@cert.hr",
        name: "Ivan Horvat",
        org: "CERT.hr",
        role: Role::Responder,
        skills: &[Skill::Web, Skill::Cloud],
        languages: &["hr", "en"],
    },
    Person {
        email: "sanne@ncsc.nl",
        name: "Sanne de Vries",
        org: "NCSC-NL",
        role: Role::Responder,
        skills: &[Skill::ThreatIntelligence, Skill::MalwareAnalysis],
        languages: &["nl", "en", "de"],
    },
    Person {
        email: "piotr@cert.pl",
        name: "Piotr Nowak",
        org: "CERT Polska",
        role: Role::Responder,
        skills: &[Skill::Forensics, Skill::OtIcs],
        languages: &["pl", "en", "uk"],
    },
    Person {
        email: "ioana@cert.ro",
        name: "Ioana Popescu",
        org: "CERT-RO",
        role: Role::Responder,
        skills: &[Skill::Network, Skill::Forensics],
        languages: &["ro", "en", "fr"],
    },
    Person {
        email: "olena@mintsyfra.example",
        name: "Olena Kovalenko",
        org: "Ministry of Digital Transformation",
        role: Role::Requester,
        skills: &[],
        languages: &["uk", "en"],
    },
    Person {
        email: "sam@northwind.example",
        name: "Sam Carter",
        org: "Northwind Threat Research",
        role: Role::Partner,
        skills: &[],
        languages: &["en"],
    },
];

pub async fn load(platform: &Platform) -> Result<()> {
    if platform.store().org_by_name(LEAD).await?.is_none() {
        super::ensure(
            platform.store().count_users().await? == 0,
            "--demo loads into an empty data directory; this one has users (use --data-dir)",
        )?;
        populate(platform).await?;
        say!("Loaded the demo exercise.");
    }
    say!("Demo accounts (password for all: {DEMO_PASSWORD}):");
    for person in PEOPLE {
        say!(
            "  {:<28} {:<12} {}",
            person.email,
            person.role.as_str(),
            person.org
        );
    }
    Ok(())
}

async fn populate(platform: &Platform) -> Result<()> {
    for (name, kind, country) in ORGS {
        platform
            .create_org(
                None,
                NewOrg {
                    name: (*name).into(),
                    kind: *kind,
                    country: (*country).into(),
                },
            )
            .await?;
    }
    // Available from yesterday for two months, so the team proposal has
    // someone to propose whenever the demo runs; one expert is away.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let window = |from: i64, to: i64| Availability {
        from: today
            .saturating_add(jiff::Span::new().days(from))
            .to_string(),
        to: today.saturating_add(jiff::Span::new().days(to)).to_string(),
    };
    for person in PEOPLE {
        let available = match (person.role, person.email) {
            (Role::Responder, "ivan@cert.hr") => vec![window(30, 60)],
            (Role::Responder, _) => vec![window(-1, 60)],
            _ => Vec::new(),
        };
        platform
            .create_user(
                None,
                NewUser {
                    email: person.email.into(),
                    display_name: Some(person.name.into()),
                    org: person.org.into(),
                    role: person.role,
                    password: Some(DEMO_PASSWORD.into()),
                    skills: person.skills.to_vec(),
                    languages: person.languages.iter().map(|l| (*l).to_owned()).collect(),
                    availability: available,
                },
            )
            .await?;
    }
    let actor = |email: &str| {
        let platform = platform.clone();
        let email = email.to_owned();
        async move {
            let user = platform.store().user_by_email(&email).await?;
            anyhow::Ok(
                user.and_then(Actor::new)
                    .ok_or_else(|| anyhow::anyhow!("demo user {email} missing"))?,
            )
        }
    };
    let requester = actor("olena@mintsyfra.example").await?;
    let coordinator = actor("rasa@ncsc.lt").await?;

    let wiper = platform
        .file_request(
            &requester,
            NewRequest {
                summary: "Government websites defaced; wiper found on ministry servers".into(),
                symptoms: "Since 23:00 EET on 23 February the ministry's public sites show a defacement \
                    message. This morning two file servers would not boot: the MBR is overwritten. \
                    EDR flagged an unsigned driver loaded by a scheduled task on the domain controller."
                    .into(),
                affected_systems: vec![
                    "www.ministry.example (IIS)".into(),
                    "FS01, FS02 (Windows Server 2019)".into(),
                    "DC01 (domain controller)".into(),
                ],
                urgency: Urgency::Critical,
                tlp: Tlp::AmberStrict,
                capabilities: vec![Skill::Forensics, Skill::MalwareAnalysis, Skill::Web],
                mitigations: "Sites taken offline; affected servers isolated from the network; \
                    domain admin passwords reset."
                    .into(),
            },
        )
        .await?;
    let wiper = platform
        .review_request(&coordinator, &wiper.id, wiper.version, Some("CERT-EE"))
        .await?;
    for (team, position) in [
        (LEAD, Position::Agree),
        ("CERT-EE", Position::Agree),
        ("CERT.hr", Position::Abstain),
        ("NCSC-NL", Position::Agree),
        ("CERT Polska", Position::Agree),
        ("CERT-RO", Position::Agree),
    ] {
        platform
            .record_position(&coordinator, &wiper.id, team, position)
            .await?;
    }
    platform
        .decide_request(&coordinator, &wiper.id, wiper.version, Decision::Accept)
        .await?;
    let activation = platform.activation(&coordinator, &wiper.id).await?;
    let mission_id = activation
        .mission_id
        .ok_or_else(|| anyhow::anyhow!("accepting opened no mission"))?;
    let mission = platform.mission(&coordinator, &mission_id).await?.mission;
    let mission = platform
        .update_checklist(
            &coordinator,
            &mission.id,
            mission.version,
            ChecklistUpdate {
                legal_basis: Some(true),
                points_of_contact: Some(true),
                secure_communications: Some(true),
                deployment: Some("remote".into()),
            },
        )
        .await?
        .mission;
    let proposal = platform.propose_team(&coordinator, &mission.id, 4).await?;
    let team: Vec<String> = proposal
        .iter()
        .filter(|c| c.proposed)
        .map(|c| c.user.id.clone())
        .collect();
    let mission = platform
        .confirm_team(&coordinator, &mission.id, mission.version, team)
        .await?
        .mission;
    platform
        .move_mission(
            &coordinator,
            &mission.id,
            mission.version,
            MissionStatus::Active,
        )
        .await?;
    let responder = actor("kadri@cert.ee").await?;
    let servers = platform
        .create_case(
            &responder,
            &mission.id,
            NewCase {
                title: "Wiped file servers FS01 and FS02".into(),
                playbook: Some("wiper".into()),
            },
        )
        .await?;
    platform
        .add_note(
            &responder,
            &servers.case.id,
            "Disk image of **FS02** acquired (SHA-256 recorded). The MBR holds a fake \
             ransom note; no recovery mechanism found, consistent with *WhisperGate*-style \
             wipers. Next: the scheduled task on `DC01`.",
        )
        .await?;
    let first = &servers.tasks[0];
    platform
        .update_task(
            &responder,
            &first.id,
            TaskUpdate {
                version: first.version,
                title: None,
                assignee_id: Some(responder.user.id.clone()),
                status: Some("done".into()),
                due_on: None,
            },
        )
        .await?;
    hunt_the_example_intrusion(platform, &responder, &servers.case.id).await?;
    platform
        .set_recommendations(
            &responder,
            &mission.id,
            "1. Rebuild `FS01` and `FS02` from known-good media; do not restore system state from backups taken after 2022-01-13.\n\
             2. Reset the passwords of every domain administrator and of the `svc_backup` account, twice, 10 hours apart (Kerberos tickets).\n\
             3. Block the indicators in this report at the perimeter and hunt for them in proxy logs back to December 2021.\n\
             4. Require MFA for VPN and remote administration; remove SMB exposure of file servers to user subnets.",
        )
        .await?;
    platform
        .create_case(
            &coordinator,
            &mission.id,
            NewCase {
                title: "Defaced public websites".into(),
                playbook: Some("defacement".into()),
            },
        )
        .await?;

    let ddos = platform
        .file_request(
            &requester,
            NewRequest {
                summary: "DDoS against the e-services portal".into(),
                symptoms: "Traffic peaks of 40 Gbit/s since 14:00; the citizen portal times out."
                    .into(),
                affected_systems: vec!["portal.ministry.example".into()],
                urgency: Urgency::High,
                tlp: Tlp::Green,
                capabilities: vec![Skill::Network, Skill::Web],
                mitigations: "Upstream provider filtering enabled.".into(),
            },
        )
        .await?;
    let ddos = platform
        .review_request(&coordinator, &ddos.id, ddos.version, Some("CERT-EE"))
        .await?;
    for (team, position) in [(LEAD, Position::Agree), ("NCSC-NL", Position::Agree)] {
        platform
            .record_position(&coordinator, &ddos.id, team, position)
            .await?;
    }
    Ok(())
}

/// The bundled example intrusion (`examples/`) as the wiper case's
/// evidence, with its rules as a pack and a hunt queued over them, so the
/// demo shows findings, triage and a timeline as soon as the worker ran.
async fn hunt_the_example_intrusion(
    platform: &Platform,
    responder: &Actor,
    case_id: &str,
) -> Result<()> {
    const EVIDENCE: &[(&str, &[u8])] = &[
        (
            "ministry-dc01.jsonl",
            include_bytes!("../../../../examples/evidence/ministry-dc01.jsonl"),
        ),
        (
            "portal-access.log",
            include_bytes!("../../../../examples/evidence/portal-access.log"),
        ),
        (
            "mail-auth.log",
            include_bytes!("../../../../examples/evidence/mail-auth.log"),
        ),
    ];
    const RULES: &[&str] = &[
        include_str!("../../../../examples/rules/discovery_whoami.yml"),
        include_str!("../../../../examples/rules/event_log_cleared.yml"),
        include_str!("../../../../examples/rules/shadow_copy_deletion.yml"),
        include_str!("../../../../examples/rules/ssh_brute_force.yml"),
        include_str!("../../../../examples/rules/webshell_request.yml"),
    ];
    // A stand-in for the wiper found on FS01: a PE header and the note.
    let mut stage1 = b"MZ\x90\x00".to_vec();
    stage1.resize(4096, 0);
    stage1.extend_from_slice(
        b"AAAAA\x00Your hard drive has been corrupted.\r\nIn case you want to recover all hard drives\r\n\
          of your organization, You should pay us $10k via bitcoin wallet\r\n\
          1AVNM68gj6PGPFcJuftKATa4WLnzg8fpfv",
    );
    stage1.resize(8192, 0);
    for (name, bytes) in EVIDENCE
        .iter()
        .copied()
        .chain([("FS01-C-PerfLogs-stage1.exe", stage1.as_slice())])
    {
        let mut incoming = platform.begin_upload(responder, case_id).await?;
        incoming.write(bytes)?;
        platform
            .finish_upload(responder, incoming, name, "127.0.0.1")
            .await?;
    }
    let pack = platform
        .upload_rulepack(
            responder,
            "CRRT example rules",
            RULES.join("\n---\n").as_bytes(),
        )
        .await?;
    let yara = platform
        .upload_rulepack(
            responder,
            "CRRT example YARA: wipers.yar",
            include_bytes!("../../../../examples/yara/wipers.yar"),
        )
        .await?;
    // What the team and a partner know of the attackers' infrastructure.
    let share = |value: &str, tlp: Tlp, tags: &[&str], case: Option<&str>, description: &str| {
        crrt_platform::NewIndicator {
            kind: None,
            value: value.into(),
            tlp,
            confidence: Some(80),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            first_seen: Some("2022-02-23".into()),
            expires_at: Some("2022-08-24".into()),
            description: Some(description.into()),
            case_id: case.map(str::to_owned),
            mission_id: None,
            // TLP:AMBER for the member-state teams working the mission.
            recipient_orgs: if tlp == Tlp::Amber {
                ORGS.iter()
                    .filter(|(name, kind, _)| *kind == OrgKind::Member && *name != "CERT-EE")
                    .map(|(name, _, _)| (*name).to_owned())
                    .collect()
            } else {
                Vec::new()
            },
            recipient_users: Vec::new(),
        }
    };
    for (value, tlp, tags, description) in [
        (
            "185.220.101[.]7",
            Tlp::Amber,
            &["T1110"][..],
            "SSH brute force source, then domain logons",
        ),
        (
            "91.203.5.0/24",
            Tlp::Amber,
            &["T1505.003"][..],
            "Hosting range of the webshell operator",
        ),
        (
            "cmd.aspx",
            Tlp::Amber,
            &["T1505.003"][..],
            "Webshell dropped under /upload/img/",
        ),
    ] {
        platform
            .share_indicator(
                responder,
                share(value, tlp, tags, Some(case_id), description),
            )
            .await?;
    }
    let partner = platform
        .store()
        .user_by_email("sam@northwind.example")
        .await?
        .and_then(Actor::new)
        .ok_or_else(|| anyhow::anyhow!("demo partner missing"))?;
    for (value, tags, description) in [
        (
            "a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92",
            &["malware:WhisperGate", "T1561.002"][..],
            "WhisperGate stage 1 (MBR wiper)",
        ),
        (
            "hxxps://cdn.discordapp[.]com/attachments/928503440139771947/930108637681184768/Tbopbh.jpg",
            &["malware:WhisperGate"][..],
            "WhisperGate stage 3 download",
        ),
        (
            "185.220.101.7",
            &["T1110"][..],
            "Tor exit seen in attacks on Ukrainian government",
        ),
    ] {
        platform
            .share_indicator(&partner, share(value, Tlp::Green, tags, None, description))
            .await?;
    }
    platform
        .start_hunt(
            responder,
            case_id,
            crrt_platform::NewHunt {
                rulepacks: vec![pack.id, yara.id],
                evidence: None,
                indicators: true,
            },
        )
        .await?;
    Ok(())
}
