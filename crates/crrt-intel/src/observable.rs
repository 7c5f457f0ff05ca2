//! Indicator values: what kind of thing a value is, and its one canonical
//! spelling, whatever way it was typed, pasted or defanged.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::IntelError;

/// The kinds of indicator CRRT keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "ipv6")]
    Ipv6,
    #[serde(rename = "cidr")]
    Cidr,
    #[serde(rename = "domain")]
    Domain,
    #[serde(rename = "url")]
    Url,
    #[serde(rename = "email")]
    Email,
    #[serde(rename = "md5")]
    Md5,
    #[serde(rename = "sha1")]
    Sha1,
    #[serde(rename = "sha256")]
    Sha256,
    #[serde(rename = "filename")]
    FileName,
    #[serde(rename = "registry-key")]
    RegistryKey,
    #[serde(rename = "account")]
    Account,
    #[serde(rename = "mutex")]
    Mutex,
    #[serde(rename = "ja3")]
    Ja3,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::Cidr,
        Kind::Domain,
        Kind::Url,
        Kind::Email,
        Kind::Md5,
        Kind::Sha1,
        Kind::Sha256,
        Kind::FileName,
        Kind::RegistryKey,
        Kind::Account,
        Kind::Mutex,
        Kind::Ja3,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::Cidr => "cidr",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Email => "email",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
            Kind::FileName => "filename",
            Kind::RegistryKey => "registry-key",
            Kind::Account => "account",
            Kind::Mutex => "mutex",
            Kind::Ja3 => "ja3",
        }
    }

    /// Kinds whose values compare without regard to case.
    pub fn case_insensitive(self) -> bool {
        !matches!(self, Kind::Mutex)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Kind {
    /// The kind a name or alias stands for (`ip-dst`, `sha-256`, ...),
    /// without allocating: bulk input asks for every line.
    pub fn lookup(text: &str) -> Option<Kind> {
        let text = text.trim();
        if text.len() > 24 {
            return None;
        }
        let mut buffer = [0u8; 24];
        let lower = &mut buffer[..text.len()];
        lower.copy_from_slice(text.as_bytes());
        lower.make_ascii_lowercase();
        let wanted = std::str::from_utf8(lower).ok()?;
        let alias = match wanted {
            "ip" | "ipv4-addr" | "ip-src" | "ip-dst" => Some(Kind::Ipv4),
            "ipv6-addr" => Some(Kind::Ipv6),
            "domain-name" | "hostname" | "fqdn" => Some(Kind::Domain),
            "email-addr" | "e-mail" | "mail" => Some(Kind::Email),
            "sha-1" => Some(Kind::Sha1),
            "sha-256" => Some(Kind::Sha256),
            "file" | "file-name" | "file_name" => Some(Kind::FileName),
            "registry" | "regkey" | "windows-registry-key" => Some(Kind::RegistryKey),
            "user" | "user-account" | "username" => Some(Kind::Account),
            _ => None,
        };
        alias.or_else(|| Kind::ALL.iter().copied().find(|k| k.as_str() == wanted))
    }
}

impl FromStr for Kind {
    type Err = IntelError;

    fn from_str(text: &str) -> Result<Kind, IntelError> {
        if let Some(kind) = Kind::lookup(text) {
            return Ok(kind);
        }
        let wanted = text.trim().to_ascii_lowercase();
        let alias = match wanted.as_str() {
            "ip" | "ipv4-addr" | "ip-src" | "ip-dst" => Some(Kind::Ipv4),
            "ipv6-addr" => Some(Kind::Ipv6),
            "domain-name" | "hostname" | "fqdn" => Some(Kind::Domain),
            "email-addr" | "e-mail" | "mail" => Some(Kind::Email),
            "sha-1" => Some(Kind::Sha1),
            "sha-256" => Some(Kind::Sha256),
            "file" | "file-name" | "file_name" => Some(Kind::FileName),
            "registry" | "regkey" | "windows-registry-key" => Some(Kind::RegistryKey),
            "user" | "user-account" | "username" => Some(Kind::Account),
            _ => None,
        };
        alias
            .or_else(|| Kind::ALL.iter().copied().find(|k| k.as_str() == wanted))
            .ok_or_else(|| {
                IntelError::Invalid(format!(
                    "{text:?} is not an indicator type; expected one of: {}",
                    Kind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// A value of a known kind, in its canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Observable {
    pub kind: Kind,
    pub value: String,
}

impl Observable {
    /// Reads a value of the given kind, or of the kind it looks like when
    /// `kind` is `None`. Defanged input (`hxxp://evil[.]com`,
    /// `user[at]example[.]org`) is accepted and refanged.
    pub fn parse(kind: Option<Kind>, raw: &str) -> Result<Observable, IntelError> {
        let text = refang(raw);
        if text.is_empty() {
            return Err(IntelError::Invalid("the value is empty".into()));
        }
        if text.len() > 4096 {
            return Err(IntelError::Invalid(
                "the value is longer than 4,096 bytes".into(),
            ));
        }
        let kind = match kind {
            Some(kind) => kind,
            None => detect(&text).ok_or_else(|| {
                IntelError::Invalid(format!(
                    "cannot tell what {raw:?} is; write it as TYPE:VALUE (for example mutex:Global\\\\x)"
                ))
            })?,
        };
        let value = canonical(kind, &text).ok_or_else(|| {
            IntelError::Invalid(format!("{raw:?} is not a valid {}", kind.as_str()))
        })?;
        Ok(Observable { kind, value })
    }

    /// A line of a bulk paste: `VALUE`, or `TYPE:VALUE` to name the type
    /// (needed for accounts and mutexes, which look like anything).
    pub fn parse_line(line: &str) -> Result<Observable, IntelError> {
        let line = line.trim();
        if let Some((prefix, rest)) = line.split_once(':')
            && !rest.starts_with("//")
            && let Some(kind) = Kind::lookup(prefix)
        {
            return Observable::parse(Some(kind), rest);
        }
        Observable::parse(None, line)
    }
}

/// Undoes the usual ways of defanging: `hxxp`, `[.]`, `(.)`, `[dot]`,
/// `[:]`, `[at]`, `[@]`, and quotes or angle brackets around a value.
pub fn refang(raw: &str) -> String {
    let mut text = raw
        .trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '<' | '>' | '`'))
        .trim()
        .to_owned();
    let bracketed = text.contains(['[', '(', '{']);
    for (from, to) in [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("(dot)", "."),
        ("[:]", ":"),
        ("[://]", "://"),
        ("[@]", "@"),
        ("[at]", "@"),
        ("(at)", "@"),
        ("[/]", "/"),
    ] {
        if bracketed && text.contains(from) {
            text = text.replace(from, to);
        }
    }
    for (fanged, scheme) in [
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("fxp://", "ftp://"),
    ] {
        if text
            .get(..fanged.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(fanged))
        {
            text = format!("{scheme}{}", &text[fanged.len()..]);
            break;
        }
    }
    text
}

const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "sys", "ps1", "psm1", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "hta",
    "scr", "msi", "lnk", "iso", "img", "vhd", "jar", "doc", "docx", "docm", "xls", "xlsx", "xlsm",
    "ppt", "pptx", "pdf", "rtf", "rar", "7z", "cab", "tmp", "dat", "bin", "elf", "sh", "py", "txt",
    "log", "ini", "cpl", "ocx", "drv", "asp", "aspx", "ashx", "asmx", "php", "jsp", "jspx", "cgi",
];

fn detect(text: &str) -> Option<Kind> {
    if text.contains("://") {
        return Some(Kind::Url);
    }
    // The cheap, common shapes first: hex digests and addresses.
    if text.bytes().all(|b| b.is_ascii_hexdigit())
        && let n @ (32 | 40 | 64) = text.len()
    {
        return Some(match n {
            32 => Kind::Md5,
            40 => Kind::Sha1,
            _ => Kind::Sha256,
        });
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(if ip.is_ipv4() { Kind::Ipv4 } else { Kind::Ipv6 });
    }
    if text.contains('/') && text.parse::<IpNet>().is_ok() {
        return Some(Kind::Cidr);
    }
    if text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match text.len() {
            32 => Some(Kind::Md5),
            40 => Some(Kind::Sha1),
            64 => Some(Kind::Sha256),
            _ => None,
        };
    }
    if ["hkey_", "hklm\\", "hkcu\\", "hku\\", "hkcr\\", "hkcc\\"]
        .iter()
        .any(|p| {
            text.get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
        })
    {
        return Some(Kind::RegistryKey);
    }
    if let Some((local, domain)) = text.rsplit_once('@')
        && !local.is_empty()
        && is_domain(domain)
    {
        return Some(Kind::Email);
    }
    if let Some((_, extension)) = text.rsplit_once('.')
        && FILE_EXTENSIONS
            .iter()
            .any(|e| e.eq_ignore_ascii_case(extension))
        && !text.contains(['/', '\\'])
    {
        return Some(Kind::FileName);
    }
    if is_domain(text) {
        return Some(Kind::Domain);
    }
    None
}

fn is_domain(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    let Some((_, tld)) = text.rsplit_once('.') else {
        return false;
    };
    text.len() <= 253
        && text.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
        && (tld.chars().all(char::is_alphabetic) || tld.starts_with("xn--"))
}

fn canonical(kind: Kind, text: &str) -> Option<String> {
    let hex = |n: usize| {
        (text.len() == n && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| text.to_ascii_lowercase())
    };
    match kind {
        // The parser accepts only the canonical dotted quad (no leading
        // zeros), so the text is its own canonical form.
        Kind::Ipv4 => text
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .map(|_| text.to_owned()),
        Kind::Ipv6 => text
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| ip.to_string()),
        // A host address with a prefix names its network.
        Kind::Cidr => text.parse::<IpNet>().ok().map(|n| n.trunc().to_string()),
        Kind::Domain => {
            let text = text.strip_suffix('.').unwrap_or(text);
            let lower = if text.is_ascii() {
                text.to_ascii_lowercase()
            } else {
                text.to_lowercase()
            };
            is_domain(&lower).then_some(lower)
        }
        Kind::Url => {
            let url = url::Url::parse(text).ok()?;
            url.host_str()?;
            Some(url.to_string())
        }
        Kind::Email => {
            let (local, domain) = text.rsplit_once('@')?;
            let domain = domain.to_lowercase();
            (!local.is_empty() && !local.contains(char::is_whitespace) && is_domain(&domain))
                .then(|| format!("{local}@{domain}"))
        }
        Kind::Md5 | Kind::Ja3 => hex(32),
        Kind::Sha1 => hex(40),
        Kind::Sha256 => hex(64),
        Kind::FileName => {
            (!text.contains(['/', '\\', '\0']) && text.len() <= 255).then(|| text.to_owned())
        }
        Kind::RegistryKey => {
            let (hive, rest) = text.split_once('\\').unwrap_or((text, ""));
            let hive = match hive.to_ascii_uppercase().as_str() {
                "HKLM" | "HKEY_LOCAL_MACHINE" => "HKEY_LOCAL_MACHINE",
                "HKCU" | "HKEY_CURRENT_USER" => "HKEY_CURRENT_USER",
                "HKU" | "HKEY_USERS" => "HKEY_USERS",
                "HKCR" | "HKEY_CLASSES_ROOT" => "HKEY_CLASSES_ROOT",
                "HKCC" | "HKEY_CURRENT_CONFIG" => "HKEY_CURRENT_CONFIG",
                _ => return None,
            };
            Some(if rest.is_empty() {
                hive.to_owned()
            } else {
                format!("{hive}\\{}", rest.trim_end_matches('\\'))
            })
        }
        Kind::Account | Kind::Mutex => {
            (!text.contains(['\n', '\r', '\0'])).then(|| text.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(raw: &str, kind: &str, value: &str) {
        let o = Observable::parse_line(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!((o.kind.as_str(), o.value.as_str()), (kind, value), "{raw}");
    }

    #[track_caller]
    fn refused(raw: &str) {
        assert!(Observable::parse_line(raw).is_err(), "{raw} was accepted");
    }

    #[test]
    fn values_are_detected_and_normalised() {
        check("hxxp://evil[.]com/a?b=1", "url", "http://evil.com/a?b=1");
        check("HXXPS://Evil.COM/Path", "url", "https://evil.com/Path");
        check("evil[.]com", "domain", "evil.com");
        check("WWW.Example.ORG.", "domain", "www.example.org");
        check("185.61.137[.]4", "ipv4", "185.61.137.4");
        check("2001:DB8::1", "ipv6", "2001:db8::1");
        check("10.1.2.3/8", "cidr", "10.0.0.0/8");
        check("2001:db8::1/32", "cidr", "2001:db8::/32");
        check("Attacker[at]Mail.Example", "email", "Attacker@mail.example");
        check(
            "D41D8CD98F00B204E9800998ECF8427E",
            "md5",
            "d41d8cd98f00b204e9800998ecf8427e",
        );
        check(
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "sha1",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        );
        check(
            "a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92",
            "sha256",
            "a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92",
        );
        check("stage1.exe", "filename", "stage1.exe");
        check("cmd.aspx", "filename", "cmd.aspx");
        check("Invoice.PDF", "filename", "Invoice.PDF");
        check(
            r"hkcu\Software\x",
            "registry-key",
            r"HKEY_CURRENT_USER\Software\x",
        );
        check(
            r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run\",
            "registry-key",
            r"HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Run",
        );
        check(r"account:MFA\svc_backup", "account", r"MFA\svc_backup");
        check(r"mutex:Global\WhisperGate", "mutex", r"Global\WhisperGate");
        check(
            "ja3:E7D705A3286E19EA42F587B344EE6865",
            "ja3",
            "e7d705a3286e19ea42f587b344ee6865",
        );
        check("\"evil.com\"", "domain", "evil.com");
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        refused("");
        refused("not a thing");
        refused("md5:xyz");
        refused("ipv4:999.1.1.1");
        // Leading zeros read as octal by some tools: refused, not guessed.
        refused("ipv4:010.1.1.1");
        refused("domain:-bad-.com");
        refused("registry-key:HKXX\\foo");
        refused("nonsense:value");
        let e = Observable::parse_line("mystery").expect_err("refused");
        assert!(e.to_string().contains("TYPE:VALUE"), "{e}");
    }
}
