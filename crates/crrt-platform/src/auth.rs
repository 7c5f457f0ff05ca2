//! Accounts and credentials: Argon2id passwords, login sessions and API
//! tokens. Secrets (passwords, session and API tokens) are shown once and
//! stored only as hashes; a stolen database yields no usable credential.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use crrt_store::Session;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::model::UserView;
use crate::{
    Actor, ApiToken, Availability, Platform, PlatformError, Result, Role, Skill, User, audit,
    new_id, now, policy, random_bytes,
};

/// How long a login session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 12;

/// A new account.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The organisation's name.
    pub org: String,
    pub role: Role,
    /// Generated (and returned once) when absent.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub skills: Vec<Skill>,
    /// ISO 639-1 codes (`en`, `uk`, `et`).
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub availability: Vec<Availability>,
}

/// Changes one makes to one's own profile; absent fields stay.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub version: i64,
    pub display_name: Option<String>,
    pub skills: Option<Vec<Skill>>,
    pub languages: Option<Vec<String>>,
    pub availability: Option<Vec<Availability>>,
    /// Both needed to change the password.
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

/// What signing in gives: the session token for the cookie, once.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub session_token: String,
    pub expires_at: String,
    pub user: User,
}

/// A new API token: its record, and the secret shown once.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: ApiToken,
    pub secret: String,
}

impl Platform {
    /// Creates an account; returns the generated password when none was given.
    pub async fn create_user(
        &self,
        actor: Option<&Actor>,
        new: NewUser,
    ) -> Result<(User, Option<String>)> {
        if let Some(actor) = actor {
            policy::require(actor, policy::Action::Administer)?;
        }
        let email = new.email.trim().to_ascii_lowercase();
        if !valid_email(&email) {
            return Err(PlatformError::Invalid(format!(
                "{:?} is not an e-mail address",
                new.email
            )));
        }
        let org = self
            .store
            .org_by_name(new.org.trim())
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("organisation {:?}", new.org)))?;
        let allowed_roles: &[Role] = match org.kind.as_str() {
            "member" => &[Role::Admin, Role::Coordinator, Role::Responder],
            "requester" => &[Role::Requester],
            _ => &[Role::Partner],
        };
        if !allowed_roles.contains(&new.role) {
            return Err(PlatformError::Invalid(format!(
                "a {} organisation's users can be: {}",
                org.kind,
                allowed_roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        check_languages(&new.languages)?;
        check_availability(&new.availability)?;
        let generated = new.password.is_none().then(generate_password);
        let password = new
            .password
            .as_deref()
            .or(generated.as_deref())
            .unwrap_or_default();
        check_password(password)?;
        let user = User {
            id: new_id(),
            display_name: new
                .display_name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| email.clone()),
            email,
            org_id: org.id,
            role: new.role.as_str().to_owned(),
            password_hash: hash_password(password)?,
            skills: new.skills.iter().map(|s| s.as_str().to_owned()).collect(),
            languages: new.languages,
            availability: new.availability,
            disabled: false,
            version: 1,
            created_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_user(&user).await?;
        tx.append_audit(&audit(
            actor,
            "user.create",
            "user",
            &user.id,
            None,
            Some(&UserView::from(&user)),
        ))
        .await?;
        tx.commit().await?;
        Ok((user, generated))
    }

    /// On first start: an admin account (and its organisation) when there
    /// are no users at all. Returns the email and the one-time password.
    pub async fn ensure_admin(&self) -> Result<Option<(String, String)>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        if self
            .store
            .org_by_name("Platform administration")
            .await?
            .is_none()
        {
            self.create_org(
                None,
                crate::NewOrg {
                    name: "Platform administration".into(),
                    kind: crate::OrgKind::Member,
                    country: "EU".into(),
                },
            )
            .await?;
        }
        let (user, password) = self
            .create_user(
                None,
                NewUser {
                    email: "admin@crrt.local".into(),
                    display_name: Some("Administrator".into()),
                    org: "Platform administration".into(),
                    role: Role::Admin,
                    password: None,
                    skills: Vec::new(),
                    languages: Vec::new(),
                    availability: Vec::new(),
                },
            )
            .await?;
        Ok(password.map(|p| (user.email, p)))
    }

    /// Signs in with email and password. Failures are counted per account
    /// and per client address; past the limit, even a right password waits.
    pub async fn login(&self, email: &str, password: &str, address: &str) -> Result<Credentials> {
        let email = email.trim().to_ascii_lowercase();
        self.limiter.check(&email, address)?;
        let user = self.store.user_by_email(&email).await?;
        // Verify against a fixed hash when the account does not exist, so
        // the answer takes as long either way.
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.as_str())
            .unwrap_or(DUMMY_HASH);
        let password_ok = verify_password(password, stored);
        let Some(user) = user.filter(|u| password_ok && !u.disabled) else {
            self.limiter.failed(&email, address);
            return Err(PlatformError::Unauthenticated);
        };
        self.limiter.succeeded(&email);
        let token = hex::encode(random_bytes::<32>());
        let created = jiff::Timestamp::now();
        let expires = created + jiff::SignedDuration::from_hours(SESSION_HOURS);
        let session = Session {
            token_hash: sha256(&token),
            user_id: user.id.clone(),
            created_at: fixed(created),
            expires_at: fixed(expires),
        };
        let mut tx = self.store.begin().await?;
        tx.delete_expired_sessions(&now()).await?;
        tx.insert_session(&session).await?;
        tx.commit().await?;
        Ok(Credentials {
            session_token: token,
            expires_at: session.expires_at,
            user,
        })
    }

    /// The account behind an e-mail and password, for protocols that send
    /// credentials with every request (TAXII over HTTP Basic): the same
    /// checks and limits as signing in, without a session.
    pub async fn password_actor(
        &self,
        email: &str,
        password: &str,
        address: &str,
    ) -> Result<Actor> {
        let email = email.trim().to_ascii_lowercase();
        self.limiter.check(&email, address)?;
        let user = self.store.user_by_email(&email).await?;
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.as_str())
            .unwrap_or(DUMMY_HASH);
        let password_ok = verify_password(password, stored);
        let Some(user) = user.filter(|u| password_ok && !u.disabled) else {
            self.limiter.failed(&email, address);
            return Err(PlatformError::Unauthenticated);
        };
        self.limiter.succeeded(&email);
        Actor::new(user).ok_or(PlatformError::Unauthenticated)
    }

    pub async fn logout(&self, session_token: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.delete_session(&sha256(session_token)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The actor behind a session cookie's token.
    pub async fn session_actor(&self, session_token: &str) -> Result<Actor> {
        let user = self
            .store
            .session_user(&sha256(session_token), &now())
            .await?;
        live_actor(user)
    }

    /// The actor behind an API token (`Authorization: Bearer ...`).
    pub async fn token_actor(&self, secret: &str) -> Result<Actor> {
        live_actor(self.store.token_user(&sha256(secret)).await?)
    }

    /// A new API token for the user with `email`: for oneself, or by an admin.
    pub async fn create_token(
        &self,
        actor: Option<&Actor>,
        email: &str,
        name: &str,
    ) -> Result<NewToken> {
        let email = email.trim().to_ascii_lowercase();
        let user = self
            .store
            .user_by_email(&email)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("user {email:?}")))?;
        if let Some(actor) = actor
            && actor.user.id != user.id
        {
            policy::require(actor, policy::Action::Administer)?;
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(PlatformError::Invalid(
                "a token needs a name of 1 to 100 characters".into(),
            ));
        }
        // A recognisable prefix lets secret scanners find leaked tokens.
        let secret = format!("crrt_{}", hex::encode(random_bytes::<32>()));
        let token = ApiToken {
            id: new_id(),
            user_id: user.id,
            name: name.to_owned(),
            token_hash: sha256(&secret),
            created_at: now(),
            revoked_at: None,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_token(&token).await?;
        tx.append_audit(&audit(
            actor,
            "token.create",
            "api_token",
            &token.id,
            None,
            Some(&token),
        ))
        .await?;
        tx.commit().await?;
        Ok(NewToken { token, secret })
    }

    /// One's own API tokens (revoked ones too, with when).
    pub async fn tokens(&self, actor: &Actor, page: crate::Page) -> Result<Vec<ApiToken>> {
        Ok(self.store.tokens_of(&actor.user.id, page).await?)
    }

    /// Revokes one of one's own tokens (an admin: anyone's).
    pub async fn revoke_token(&self, actor: &Actor, id: &str) -> Result<()> {
        let token = self
            .store
            .token(id)
            .await?
            .filter(|t| {
                t.user_id == actor.user.id || policy::allowed(actor, policy::Action::Administer)
            })
            .ok_or_else(|| PlatformError::NotFound(format!("token {id}")))?;
        let at = now();
        let mut tx = self.store.begin().await?;
        if !tx.revoke_token(&token.id, &at).await? {
            return Err(PlatformError::Conflict(format!(
                "token {id} is already revoked"
            )));
        }
        let mut after = token.clone();
        after.revoked_at = Some(at);
        tx.append_audit(&audit(
            Some(actor),
            "token.revoke",
            "api_token",
            id,
            Some(&token),
            Some(&after),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Updates one's own profile: name, skills, languages, availability,
    /// password (with the current one; other sessions end).
    pub async fn update_profile(&self, actor: &Actor, update: ProfileUpdate) -> Result<UserView> {
        let before = self
            .store
            .user(&actor.user.id)
            .await?
            .ok_or(PlatformError::Unauthenticated)?;
        if before.version != update.version {
            return Err(PlatformError::Conflict(format!(
                "your profile is at version {}, not {}; reload it and try again",
                before.version, update.version
            )));
        }
        let mut after = before.clone();
        if let Some(name) = update.display_name {
            let name = name.trim();
            if name.is_empty() || name.len() > 200 {
                return Err(PlatformError::Invalid(
                    "a name needs 1 to 200 characters".into(),
                ));
            }
            after.display_name = name.to_owned();
        }
        if let Some(skills) = update.skills {
            after.skills = skills.iter().map(|s| s.as_str().to_owned()).collect();
        }
        if let Some(languages) = update.languages {
            check_languages(&languages)?;
            after.languages = languages;
        }
        if let Some(availability) = update.availability {
            check_availability(&availability)?;
            after.availability = availability;
        }
        let password_changed = match (update.current_password, update.new_password) {
            (None, None) => false,
            (Some(current), Some(new)) => {
                if !verify_password(&current, &before.password_hash) {
                    return Err(PlatformError::Forbidden(
                        "the current password is wrong".into(),
                    ));
                }
                check_password(&new)?;
                after.password_hash = hash_password(&new)?;
                true
            }
            _ => {
                return Err(PlatformError::Invalid(
                    "changing the password needs current_password and new_password".into(),
                ));
            }
        };
        after.version += 1;
        let mut tx = self.store.begin().await?;
        tx.update_user(&after).await?;
        if password_changed {
            tx.delete_sessions_of(&after.id).await?;
        }
        let action = if password_changed {
            "user.password"
        } else {
            "user.profile"
        };
        tx.append_audit(&audit(
            Some(actor),
            action,
            "user",
            &after.id,
            Some(&UserView::from(&before)),
            Some(&UserView::from(&after)),
        ))
        .await?;
        tx.commit().await?;
        Ok(UserView::from(&after))
    }

    /// An admin disables (or re-enables) an account; its sessions end.
    pub async fn set_disabled(
        &self,
        actor: &Actor,
        user_id: &str,
        disabled: bool,
    ) -> Result<UserView> {
        policy::require(actor, policy::Action::Administer)?;
        if user_id == actor.user.id && disabled {
            return Err(PlatformError::Conflict(
                "you cannot disable your own account".into(),
            ));
        }
        let before = self
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("user {user_id}")))?;
        let mut after = before.clone();
        after.disabled = disabled;
        after.version += 1;
        let mut tx = self.store.begin().await?;
        tx.update_user(&after).await?;
        tx.delete_sessions_of(&after.id).await?;
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        tx.append_audit(&audit(
            Some(actor),
            action,
            "user",
            &after.id,
            Some(&UserView::from(&before)),
            Some(&UserView::from(&after)),
        ))
        .await?;
        tx.commit().await?;
        Ok(UserView::from(&after))
    }

    pub async fn users(&self, actor: &Actor, page: crate::Page) -> Result<Vec<UserView>> {
        policy::require(actor, policy::Action::ListUsers)?;
        Ok(self
            .store
            .users(None, page)
            .await?
            .iter()
            .map(UserView::from)
            .collect())
    }
}

fn live_actor(user: Option<User>) -> Result<Actor> {
    user.filter(|u| !u.disabled)
        .and_then(Actor::new)
        .ok_or(PlatformError::Unauthenticated)
}

pub(crate) fn sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn fixed(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_languages(languages: &[String]) -> Result<()> {
    for language in languages {
        if language.len() != 2 || !language.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(PlatformError::Invalid(format!(
                "language {language:?} is not a two-letter ISO 639-1 code"
            )));
        }
    }
    Ok(())
}

fn check_availability(windows: &[Availability]) -> Result<()> {
    if windows.len() > 100 {
        return Err(PlatformError::Invalid(
            "at most 100 availability windows".into(),
        ));
    }
    for window in windows {
        let from = window.from.parse::<jiff::civil::Date>();
        let to = window.to.parse::<jiff::civil::Date>();
        if !matches!((from, to), (Ok(f), Ok(t)) if f <= t) {
            return Err(PlatformError::Invalid(format!(
                "availability {} to {} is not a pair of dates (YYYY-MM-DD) in order",
                window.from, window.to
            )));
        }
    }
    Ok(())
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PlatformError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(PlatformError::Invalid(
            "a password of over 1 KiB is refused".into(),
        ));
    }
    Ok(())
}

/// 20 characters from a 57-letter alphabet without look-alikes: ~116 bits.
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes::<20>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

pub(crate) fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| PlatformError::Invalid(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PlatformError::Invalid(format!("password hashing: {e}")))
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// An Argon2id hash of a random password nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
    JrMFdQFPPG9RTlWnVCMSOW1rB4H4rWn3IM3MoNHF0Yk";

/// Failed sign-ins per account and per client address, in a sliding
/// window. In memory: each server process counts its own (documented).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    pub const PER_ACCOUNT: usize = 5;
    pub const PER_ADDRESS: usize = 20;

    fn check(&self, email: &str, address: &str) -> Result<()> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for (key, limit) in [
            (format!("account:{email}"), Self::PER_ACCOUNT),
            (format!("address:{address}"), Self::PER_ADDRESS),
        ] {
            let times = failures.entry(key).or_default();
            times.retain(|t| now.duration_since(*t) < Self::WINDOW);
            if times.len() >= limit {
                let oldest = times.first().copied().unwrap_or(now);
                let wait = Self::WINDOW.saturating_sub(now.duration_since(oldest));
                return Err(PlatformError::RateLimited {
                    retry_after_seconds: wait.as_secs().max(1),
                });
            }
        }
        Ok(())
    }

    fn failed(&self, email: &str, address: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for key in [format!("account:{email}"), format!("address:{address}")] {
            failures.entry(key).or_default().push(now);
        }
    }

    fn succeeded(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("account:{email}"));
    }
}
