//! The engine on the shared corpus: real attack recordings, real SigmaHQ
//! rules. Skipped with a message when `../shared/data` is absent (a user's
//! fresh clone); a failure when `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use crrt_hunt::{Finding, Hunter, Progress, ReadLimits, RuleLoader, RuleSet, discover};

fn shared_data() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if path.join("evtx-attack-samples").is_dir() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} is missing",
        path.display()
    );
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "skipping: {} not found (the shared test corpus is not in a fresh clone)",
        path.display()
    );
    None
}

fn samples(data: &std::path::Path) -> PathBuf {
    data.join("evtx-attack-samples")
}

/// The SigmaHQ Windows, emerging-threats and threat-hunting rules, loaded once.
fn windows_rules(data: &std::path::Path) -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        RuleLoader::new()
            .path(data.join("sigma/rules/windows"))
            .path(data.join("sigma/rules-emerging-threats"))
            .path(data.join("sigma/rules-threat-hunting"))
            .load()
            .expect("SigmaHQ rules load")
    })
}

fn hunt(rules: &RuleSet, paths: &[PathBuf]) -> crrt_hunt::HuntReport {
    let evidence = discover(paths).expect("evidence exists");
    Hunter::new(rules).run(&evidence, &Progress::default())
}

/// Sample recordings of ATT&CK techniques and a SigmaHQ rule each must fire.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "Credential Access/4794_DSRM_password_change_t1098.evtx",
        &["53ad8e36-f573-46bf-97e4-15ba5bf4bb51"],
    ), // DSRM password change
    (
        "Credential Access/CA_Mimikatz_Memssp_Default_Logs_Sysmon_11.evtx",
        &["9e099d99-44c2-42b6-a6d8-54c3545cab29"],
    ), // Mimikatz kirbi file
    (
        "Credential Access/sysmon_10_1_memdump_comsvcs_minidump.evtx",
        &["646ea171-dded-4578-8a4d-65e9822892e3"],
    ), // comsvcs.dll MiniDump
    (
        "Credential Access/sysmon_rdrleakdiag_lsass_dump.evtx",
        &["edadb1e5-5919-4e4c-8462-a9e643b02c4b"],
    ), // RdrLeakDiag dump
    (
        "Credential Access/Powershell_4104_MiniDumpWriteDump_Lsass.evtx",
        &["84c174ab-d3ef-481f-9c86-a50d0b8e3edb"],
    ), // ps_script 4104
    (
        "Credential Access/phish_windows_credentials_powershell_scriptblockLog_4104.evtx",
        &["ca8b77a9-d499-4095-b793-5d5f330d450e"],
    ), // credential prompt
    (
        "Defense Evasion/DE_1102_security_log_cleared.evtx",
        &["d99b79d2-0a6f-4f46-ad8b-260b6e17f982"],
    ), // Security log cleared (UserData)
    (
        "Defense Evasion/DE_104_system_log_cleared.evtx",
        &["100ef69e-3327-481c-8e5c-6d80d9507556"],
    ), // System log cleared
    (
        "Defense Evasion/DE_Fake_ComputerAccount_4720.evtx",
        &["7b449a5e-1db5-4dd0-a2dc-4e3a67282538"],
    ), // hidden local user
    (
        "Defense Evasion/de_PsScriptBlockLogging_disabled_sysmon12_13.evtx",
        &["fecfd1a1-cc78-4313-a1ea-2ee2e8ec27a7"],
    ), // registry_set
    (
        "Defense Evasion/de_portforward_netsh_rdp_sysmon_13_1.evtx",
        &["782d6f3e-4c5d-4b8c-92a3-1d05fed72e63"],
    ), // netsh portproxy
    (
        "Defense Evasion/DE_xp_cmdshell_enabled_MSSQL_EID_15457.evtx",
        &["d08dd86f-681e-4a00-a92c-1db218754417"],
    ), // application log
    (
        "Discovery/dicovery_4661_net_group_domain_admins_target.evtx",
        &["35ba1d85-724d-42a3-889f-2e2362bcaf23"],
    ), // AD recon
    (
        "Execution/sysmon_11_1_lolbas_downldr_desktopimgdownldr.evtx",
        &["bb58aa4a-b80b-415a-a2c0-2f65a4c81009"],
    ), // LOLBAS download
    (
        "Execution/exec_wmic_xsl_internet_sysmon_3_1_11.evtx",
        &["8d63dadf-b91b-4187-87b6-34a1114577ea"],
    ), // SquiblyTwo
    (
        "Lateral Movement/LM_DCOM_MSHTA_LethalHTA_Sysmon_3_1.evtx",
        &["ed5d72a6-f8f4-479d-ba79-02f6a80d7471"],
    ), // LethalHTA
    (
        "Lateral Movement/LM_renamed_psexecsvc_5145.evtx",
        &["c462f537-a1e3-41a6-b5fc-b2c2cef9bf82"],
    ), // PsExec share access
    (
        "Lateral Movement/lm_sysmon_18_remshell_over_namedpipe.evtx",
        &["fe3ac066-98bb-432a-b1e7-a5229cb39d4a"],
    ), // malicious pipe
    (
        "Lateral Movement/LM_typical_IIS_webshell_sysmon_1_10_traces.evtx",
        &["8202070f-edeb-4d31-a010-a26c72ac5600"],
    ), // webshell child
    (
        "Lateral Movement/LM_4624_mimikatz_sekurlsa_pth_source_machine.evtx",
        &["192a0330-c20b-4356-90b6-7b7049ae0b87"],
    ), // overpass the hash
    (
        "Command and Control/DE_RDP_Tunnel_5156.evtx",
        &["5bed80b6-b3e8-428e-a3ae-d3c757589e41"],
    ), // RDP tunnel WFP 5156
    (
        "Command and Control/DE_sysmon-3-rdp-tun.evtx",
        &["48a61b29-389f-4032-b317-b30de6b95314"],
    ), // plink port forwarding
    (
        "Defense Evasion/DSE_bypass_BYOV_TDL_dummydriver_sysmon_6_7_13.evtx",
        &["7aaaf4b8-e47c-4295-92ee-6ed40a6f60c8"],
    ), // vulnerable driver
    (
        "Lateral Movement/LM_impacket_docmexec_mmc_sysmon_01.evtx",
        &["05a2ab7e-ce11-4b63-86db-ab32e763e11d"],
    ), // MMC spawning shell
];

fn rule_ids_by_file(findings: &[Finding]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in findings {
        out.entry(f.evidence_file.clone())
            .or_default()
            .extend(f.rule_id.clone());
    }
    out
}

#[test]
fn attack_samples_trigger_their_sigmahq_rules() {
    let Some(data) = shared_data() else { return };
    let rules = windows_rules(&data);
    assert!(
        rules.detection_rule_count() > 2900,
        "{} rules",
        rules.detection_rule_count()
    );
    let paths: Vec<PathBuf> = EXPECTED
        .iter()
        .map(|(file, _)| samples(&data).join(file))
        .collect();
    let report = hunt(rules, &paths);
    assert!(report.stats.failed.is_empty(), "{:?}", report.stats.failed);
    let found = rule_ids_by_file(&report.findings);
    let mut missing = Vec::new();
    for ((file, ids), path) in EXPECTED.iter().zip(&paths) {
        let fired = found
            .get(&path.display().to_string())
            .cloned()
            .unwrap_or_default();
        for id in *ids {
            if !fired.contains(*id) {
                missing.push(format!("{file}: {id} (fired: {fired:?})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "rules that did not fire:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_same_input_twice_gives_identical_jsonl() {
    let Some(data) = shared_data() else { return };
    let rules = windows_rules(&data);
    let paths = [
        samples(&data).join("Lateral Movement"),
        samples(&data).join("Credential Access"),
    ];
    let render = || -> Vec<u8> {
        let mut out = Vec::new();
        for f in hunt(rules, &paths).findings {
            serde_json::to_writer(&mut out, &f).expect("json");
            out.push(b'\n');
        }
        out
    };
    let first = render();
    assert!(!first.is_empty());
    assert_eq!(first, render());
}

#[test]
fn json_export_is_hunted_exactly_like_the_evtx() {
    let Some(data) = shared_data() else { return };
    let rules = windows_rules(&data);
    let dir = tempfile::tempdir().expect("tempdir");
    let evtx_path = samples(&data).join("Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx");
    // Render it as `evtx_dump -o jsonl` does: attributes inline under `#attributes`.
    let mut parser = evtx::EvtxParser::from_path(&evtx_path).expect("evtx");
    let json_path = dir.path().join("export.jsonl");
    let mut out = std::fs::File::create(&json_path).expect("create");
    for record in parser.records_json_value() {
        let record = record.expect("record");
        writeln!(out, "{}", record.data).expect("write");
    }
    drop(out);
    let key = |f: &Finding| {
        (
            f.record_id,
            f.rule_id.clone(),
            f.timestamp,
            f.host.clone(),
            f.event_id,
        )
    };
    let from_evtx: BTreeSet<_> = hunt(rules, std::slice::from_ref(&evtx_path))
        .findings
        .iter()
        .map(key)
        .collect();
    let from_json: BTreeSet<_> = hunt(rules, &[json_path]).findings.iter().map(key).collect();
    assert!(from_evtx.len() >= 10, "{from_evtx:?}");
    assert_eq!(from_evtx, from_json);
}

#[test]
fn a_damaged_evtx_still_yields_its_readable_records() {
    let Some(data) = shared_data() else { return };
    let rules = windows_rules(&data);
    let original = samples(&data).join("Command and Control/bits_openvpn.evtx");
    let bytes = std::fs::read(&original).expect("read");
    let intact = hunt(rules, std::slice::from_ref(&original))
        .stats
        .records_read;

    let dir = tempfile::tempdir().expect("tempdir");
    // Chunks are 64 KiB after a 4 KiB file header: smash the middle of chunk 3.
    let mut smashed = bytes.clone();
    let start = 4096 + 3 * 65536 + 2048;
    smashed[start..start + 4096].fill(0xA5);
    let smashed_path = dir.path().join("smashed.evtx");
    std::fs::write(&smashed_path, smashed).expect("write");
    let report = hunt(rules, std::slice::from_ref(&smashed_path));
    assert!(
        report.stats.records_read > intact / 2,
        "{} of {intact}",
        report.stats.records_read
    );
    assert!(
        report.stats.records_read < intact,
        "{} of {intact}",
        report.stats.records_read
    );
    assert_eq!(report.stats.damaged.len(), 1, "{:?}", report.stats);

    // Empty chunks, between chunks in use and after them (a preallocated
    // log), are skipped without a word; a chunk of garbage is one damaged.
    let chunk = |n: usize| &bytes[4096 + n * 65536..4096 + (n + 1) * 65536];
    let mut spaced = bytes[..4096 + 65536].to_vec();
    spaced.extend(std::iter::repeat_n(0, 65536));
    spaced.extend_from_slice(&bytes[4096 + 65536..]);
    spaced.extend(std::iter::repeat_n(0, 3 * 65536));
    let spaced_path = dir.path().join("spaced.evtx");
    std::fs::write(&spaced_path, &spaced).expect("write");
    let report = hunt(rules, std::slice::from_ref(&spaced_path));
    assert_eq!(report.stats.records_read, intact);
    assert!(report.stats.damaged.is_empty(), "{:?}", report.stats);
    let mut garbage = chunk(0).to_vec();
    garbage[..8].copy_from_slice(b"NotAChnk");
    spaced.extend_from_slice(&garbage);
    std::fs::write(&spaced_path, &spaced).expect("write");
    let report = hunt(rules, std::slice::from_ref(&spaced_path));
    assert_eq!(report.stats.records_read, intact);
    assert_eq!(report.stats.damaged.len(), 1, "{:?}", report.stats);
    assert!(
        report.stats.damaged[0].detail.contains("chunk"),
        "{:?}",
        report.stats.damaged
    );

    // Cut off in the middle: the complete chunks are read.
    let truncated_path = dir.path().join("truncated.evtx");
    std::fs::write(&truncated_path, &bytes[..bytes.len() / 2]).expect("write");
    let report = hunt(rules, &[truncated_path]);
    assert!(report.stats.records_read > 0);
    assert!(report.stats.records_read < intact);

    // Not an EVTX at all behind the magic: one clear failure, no panic.
    let garbage_path = dir.path().join("garbage.evtx");
    std::fs::write(&garbage_path, b"ElfFile\0 and then nothing useful").expect("write");
    let report = hunt(rules, &[garbage_path]);
    assert_eq!(report.stats.failed.len(), 1, "{:?}", report.stats);
    assert!(
        report.stats.failed[0].detail.contains("EVTX"),
        "{:?}",
        report.stats.failed
    );
}

fn write_zip(path: &std::path::Path, members: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).expect("create");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, options).expect("member");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
}

#[test]
fn zip_packages_are_read_in_place_and_hostile_ones_refused() {
    let Some(data) = shared_data() else { return };
    let rules = windows_rules(&data);
    let dir = tempfile::tempdir().expect("tempdir");
    let cleared =
        std::fs::read(samples(&data).join("Defense Evasion/DE_1102_security_log_cleared.evtx"))
            .expect("read");

    let triage = dir.path().join("triage.zip");
    write_zip(
        &triage,
        &[
            ("C/Windows/Logs/Security.evtx", &cleared),
            ("notes.txt", b"collected by J."),
        ],
    );
    let report = hunt(rules, std::slice::from_ref(&triage));
    let expected = format!("{}!/C/Windows/Logs/Security.evtx", triage.display());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.evidence_file == expected && f.rule_title == "Security Eventlog Cleared")
    );
    assert_eq!(
        report.stats.unsupported,
        vec![format!("{}!/notes.txt", triage.display())]
    );

    let traversal = dir.path().join("traversal.zip");
    write_zip(
        &traversal,
        &[
            ("ok.evtx", &cleared),
            ("../../etc/cron.d/evil.evtx", &cleared),
        ],
    );
    let report = hunt(rules, &[traversal]);
    assert!(report.findings.is_empty());
    assert_eq!(report.stats.failed.len(), 1);
    assert!(
        report.stats.failed[0]
            .detail
            .contains("escapes the archive"),
        "{:?}",
        report.stats.failed
    );

    let bomb = dir.path().join("bomb.zip");
    write_zip(&bomb, &[("big.log", &vec![b'A'; 64 << 20])]);
    assert!(std::fs::metadata(&bomb).expect("meta").len() < 1 << 20);
    let evidence = discover(&[bomb]).expect("evidence");
    let report = Hunter::new(rules)
        .limits(ReadLimits {
            max_unzipped_bytes: 8 << 20,
        })
        .run(&evidence, &Progress::default());
    assert_eq!(report.stats.failed.len(), 1, "{:?}", report.stats);
    assert!(
        report.stats.failed[0].detail.contains("ZIP bomb"),
        "{:?}",
        report.stats.failed
    );
}

#[test]
fn web_logs_in_the_corpus_are_parsed() {
    let Some(data) = shared_data() else { return };
    let rules = RuleLoader::new()
        .path(data.join("sigma/rules/web"))
        .load()
        .expect("web rules");
    let dir = samples(&data).join("Command and Control");
    let report = hunt(
        &rules,
        &[
            dir.join("Tunna_rdp_tunnel_IIS.log"),
            dir.join("web_attack_and_isp_webshell_localhost_access_log.txt"),
        ],
    );
    let formats: Vec<&str> = report
        .stats
        .files_by_format
        .iter()
        .map(|(f, _)| f.name())
        .collect();
    assert_eq!(formats, vec!["W3C log", "access log"]);
    assert!(report.stats.records_read > 6900, "{:?}", report.stats);
}
