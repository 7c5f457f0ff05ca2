//! The vocabulary of the domain: roles, kinds, skills, TLP, and the acting
//! user. Stored as their lowercase names.

use serde::{Deserialize, Serialize};

use crate::{PlatformError, User};

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = PlatformError;
            fn from_str(text: &str) -> Result<Self, PlatformError> {
                match text.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(PlatformError::Invalid(format!(
                        "{text:?} is not a {}; expected one of: {}",
                        stringify!($name).to_ascii_lowercase(),
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// What a user may do, with their organisation and missions (see `policy`).
    Role {
        Admin = "admin",
        Coordinator = "coordinator",
        Responder = "responder",
        Requester = "requester",
        Partner = "partner",
    }
);

named_enum!(
    /// Member-state team, requesting institution, or partner (CERT, vendor).
    OrgKind {
        Member = "member",
        Requester = "requester",
        Partner = "partner",
    }
);

named_enum!(
    /// What a responder can do, and what a request asks for.
    Skill {
        Forensics = "forensics",
        MalwareAnalysis = "malware-analysis",
        Network = "network",
        Web = "web",
        OtIcs = "ot-ics",
        Cloud = "cloud",
        ThreatIntelligence = "threat-intelligence",
        LegalCommunication = "legal-communication",
    }
);

/// TLP 2.0 levels (with their STIX markings) live with the formats.
pub use crrt_intel::Tlp;

/// The signed-in user on whose behalf an operation runs.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub role: Role,
}

impl Actor {
    /// `None` when the stored role is not one we know (a damaged row): such
    /// a user can do nothing.
    pub fn new(user: User) -> Option<Actor> {
        let role = user.role.parse().ok()?;
        Some(Actor { user, role })
    }

    pub fn org_id(&self) -> &str {
        &self.user.org_id
    }
}

/// A new organisation.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    pub name: String,
    pub kind: OrgKind,
    pub country: String,
}

/// A user as others may see it: everything but the password hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub org_id: String,
    pub role: String,
    pub skills: Vec<String>,
    pub languages: Vec<String>,
    pub availability: Vec<crate::Availability>,
    pub disabled: bool,
    /// Name the version you read when you change the profile.
    pub version: i64,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            org_id: user.org_id.clone(),
            role: user.role.clone(),
            skills: user.skills.clone(),
            languages: user.languages.clone(),
            availability: user.availability.clone(),
            disabled: user.disabled,
            version: user.version,
            created_at: user.created_at.clone(),
        }
    }
}
