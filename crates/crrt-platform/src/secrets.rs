//! Credentials the platform must keep to act for the team (a partner's TAXII
//! token or password), sealed with a key that lives beside the server, not
//! in the database: a copy of the database, or its backup, does not give
//! away the partners' credentials.
//!
//! Sealed values read `sealed:v1:` then the base64 of a random 96-bit nonce
//! and the ChaCha20-Poly1305 ciphertext with its tag (ring, already in the
//! tree for TLS). Values stored before sealing existed have no prefix and
//! are read as they are until the server seals them at start.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::{PlatformError, Result};

const PREFIX: &str = "sealed:v1:";
const KEY_LEN: usize = 32;

/// The key that seals stored credentials, read from (or first written to)
/// a file only the server's account may read.
pub struct SecretBox {
    key: LessSafeKey,
    path: PathBuf,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SecretBox {
    /// Reads the key at `path`, or creates it (32 random bytes, mode 0600)
    /// when there is none. A file of the wrong size is refused, never
    /// replaced: credentials sealed with it would be lost.
    pub fn open_or_create(path: &Path) -> Result<SecretBox> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
            Err(e) => {
                return Err(PlatformError::Invalid(format!(
                    "reading the credential key {}: {e}",
                    path.display()
                )));
            }
        };
        if bytes.len() != KEY_LEN {
            return Err(PlatformError::Invalid(format!(
                "{} is not a credential key ({} bytes, {KEY_LEN} expected); \
                 restore the server's own key file",
                path.display(),
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| PlatformError::Invalid(format!("{}: unusable key", path.display())))?;
        Ok(SecretBox {
            key: LessSafeKey::new(key),
            path: path.to_owned(),
        })
    }

    /// Where the key is kept (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source works");
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .expect("a credential is far below ChaCha20-Poly1305's size limit");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// The plain text of a stored value; an unsealed (older) value as it is.
    pub fn open(&self, stored: &str) -> Result<String> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let wrong_key = || {
            PlatformError::Invalid(format!(
                "a stored credential cannot be opened with the key {} \
                 (another server's key, or the value was altered): enter the credential again",
                self.path.display()
            ))
        };
        let mut data = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| wrong_key())?;
        if data.len() < NONCE_LEN {
            return Err(wrong_key());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[..NONCE_LEN]);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut data[NONCE_LEN..],
            )
            .map_err(|_| wrong_key())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong_key())
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

/// A fresh key, written where no one else may read it. `create_new`: two
/// servers starting at once cannot each write their own.
fn create(path: &Path) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| {
        PlatformError::Invalid(format!(
            "creating the credential key {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut key = vec![0u8; KEY_LEN];
    getrandom::fill(&mut key).expect("the operating system's random source works");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&key).map_err(fail)?;
            file.sync_all().map_err(fail)?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/secret.key");
        let first = SecretBox::open_or_create(&path).expect("created");
        let sealed = first.seal("bearer partner-token-123");
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("partner-token"));
        // Two seals of one value differ (fresh nonces).
        assert_ne!(sealed, first.seal("bearer partner-token-123"));
        let again = SecretBox::open_or_create(&path).expect("read back");
        assert_eq!(
            again.open(&sealed).expect("opens"),
            "bearer partner-token-123"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Older, unsealed values read as they are.
        assert_eq!(again.open("bearer old").expect("plain"), "bearer old");

        let other = SecretBox::open_or_create(&dir.path().join("other.key")).expect("other");
        let err = other.open(&sealed).expect_err("another key").to_string();
        assert!(err.contains("other.key"), "{err}");
        let mut altered = sealed.clone();
        altered.replace_range(sealed.len() - 4.., "AAAA");
        assert!(again.open(&altered).is_err());
        assert!(again.open("sealed:v1:!!").is_err());

        std::fs::write(dir.path().join("short.key"), b"too short").expect("write");
        let err = SecretBox::open_or_create(&dir.path().join("short.key"))
            .expect_err("short")
            .to_string();
        assert!(err.contains("not a credential key"), "{err}");
    }
}
