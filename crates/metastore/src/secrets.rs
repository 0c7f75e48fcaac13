//! At-rest encryption of stored secrets (connector-profile credentials, API-key secrets).
//!
//! One 256-bit key lives in a file in the data directory, created on first start with mode
//! 0600. Each value is sealed with AES-256-GCM under a fresh random 96-bit nonce; the
//! associated data names the value's owner (e.g. the profile ARN), so a sealed blob copied
//! onto another record fails to open instead of leaking that record's credentials.
//!
//! Sealed format: `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The
//! version byte is authenticated too (it prefixes the associated data), which leaves room for a
//! future key rotation or algorithm change without ambiguity. A KMS-backed key provider was
//! left out on purpose: a self-hosted deployment has no KMS, and a key file is what the
//! operator can back up.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::TryRngCore;
use rand::rngs::OsRng;

/// Length of the key file, in bytes.
pub const KEY_LEN: usize = 32;
/// Current sealed-format version.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Smallest possible sealed value: version, nonce and tag around an empty plaintext.
const MIN_SEALED_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// Why a key could not be loaded or a value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file could not be read or created.
    #[error("secret key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The key file exists but does not hold exactly [`KEY_LEN`] bytes.
    #[error("secret key file {path} holds {len} bytes, expected {KEY_LEN}; refusing to use it")]
    KeyLength {
        /// The key file.
        path: PathBuf,
        /// Its actual length.
        len: u64,
    },
    /// The operating system's random number generator failed.
    #[error("cannot generate a secret key: {0}")]
    Random(String),
    /// The sealed value is shorter than the smallest valid one.
    #[error("sealed value is truncated: {len} bytes, at least {MIN_SEALED_LEN} expected")]
    Truncated {
        /// Its length.
        len: usize,
    },
    /// The sealed value was produced by an unknown format version.
    #[error("sealed value has unknown format version {0}")]
    UnknownVersion(u8),
    /// Authentication failed: wrong key, wrong associated data, or tampered bytes.
    #[error("sealed value cannot be opened: wrong key, wrong owner or tampered data")]
    Unauthentic,
}

/// Seals and opens secrets with the data directory's key. `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("key", &"**REDACTED**")
            .finish()
    }
}

impl SecretBox {
    /// Loads the key from `key_path`, or creates the file with a new random key (mode 0600)
    /// when it does not exist. Missing parent directories are created.
    ///
    /// # Errors
    ///
    /// [`SecretError::KeyLength`] if the file exists with a length other than [`KEY_LEN`] (a
    /// truncated or foreign file must not silently replace the key that sealed the stored
    /// data); [`SecretError::Io`] if it cannot be read or created.
    pub fn load_or_create(key_path: &Path) -> Result<Self, SecretError> {
        let io_error = |source| SecretError::Io {
            path: key_path.to_path_buf(),
            source,
        };
        match fs::File::open(key_path) {
            Ok(file) => Self::read_key(key_path, file),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(io_error)?;
                }
                match create_key_file(key_path) {
                    Ok(key) => {
                        tracing::info!(path = %key_path.display(), "created secret key file");
                        Ok(Self::from_key(&key))
                    }
                    // Another process created it between our open and create: use theirs.
                    Err(SecretError::Io { source, .. })
                        if source.kind() == io::ErrorKind::AlreadyExists =>
                    {
                        let file = fs::File::open(key_path).map_err(io_error)?;
                        Self::read_key(key_path, file)
                    }
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(io_error(error)),
        }
    }

    /// A box with a fresh random key that is never written anywhere (tests, throw-away
    /// servers).
    ///
    /// # Errors
    ///
    /// [`SecretError::Random`] if the operating system's random number generator fails.
    pub fn generate() -> Result<Self, SecretError> {
        Ok(Self::from_key(&random_key()?))
    }

    /// A box for a known key.
    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// Encrypts `plaintext`, binding it to `associated_data` (which is not stored and must be
    /// given again to [`SecretBox::open`]).
    ///
    /// # Panics
    ///
    /// If `plaintext` or `associated_data` exceeds AES-GCM's limit of 64 GiB.
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = versioned_aad(VERSION, associated_data);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encrypts any input below 64 GiB");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts a value produced by [`SecretBox::seal`] with the same key and associated data.
    ///
    /// # Errors
    ///
    /// [`SecretError::Truncated`], [`SecretError::UnknownVersion`], or
    /// [`SecretError::Unauthentic`] when the key, the associated data or any byte differs.
    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < MIN_SEALED_LEN {
            return Err(SecretError::Truncated { len: sealed.len() });
        }
        let (version, rest) = (sealed[0], &sealed[1..]);
        if version != VERSION {
            return Err(SecretError::UnknownVersion(version));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = versioned_aad(version, associated_data);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Unauthentic)
    }

    fn read_key(path: &Path, file: fs::File) -> Result<Self, SecretError> {
        let io_error = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        let metadata = file.metadata().map_err(io_error)?;
        if metadata.len() != KEY_LEN as u64 {
            return Err(SecretError::KeyLength {
                path: path.to_path_buf(),
                len: metadata.len(),
            });
        }
        warn_if_readable_by_others(path, &metadata);
        // Read one byte more than needed: the file may have changed since the length check.
        let mut buf = Vec::with_capacity(KEY_LEN + 1);
        file.take(KEY_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(io_error)?;
        let key: [u8; KEY_LEN] = buf
            .as_slice()
            .try_into()
            .map_err(|_| SecretError::KeyLength {
                path: path.to_path_buf(),
                len: buf.len() as u64,
            })?;
        Ok(Self::from_key(&key))
    }
}

fn versioned_aad(version: u8, associated_data: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + associated_data.len());
    aad.push(version);
    aad.extend_from_slice(associated_data);
    aad
}

fn random_key() -> Result<[u8; KEY_LEN], SecretError> {
    let mut key = [0u8; KEY_LEN];
    OsRng
        .try_fill_bytes(&mut key)
        .map_err(|error| SecretError::Random(error.to_string()))?;
    Ok(key)
}

/// Creates the key file exclusively (never overwriting a key), owner-only from the start.
fn create_key_file(path: &Path) -> Result<[u8; KEY_LEN], SecretError> {
    let io_error = |source| SecretError::Io {
        path: path.to_path_buf(),
        source,
    };
    let key = random_key()?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    let written = file.write_all(&key).and_then(|()| file.sync_all());
    if let Err(error) = written {
        // A partial key file would make every later start fail; remove it so a retry works.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io_error(error));
    }
    Ok(key)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, metadata: &fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:o}"),
            "secret key file is accessible to other users; restrict it to mode 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _metadata: &fs::Metadata) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    #[test]
    fn round_trip() {
        let secret_box = SecretBox::generate().unwrap();
        for plaintext in [&b""[..], b"x", "pässwörd ✓ 🔑".as_bytes(), &[0u8; 4096]] {
            let sealed = secret_box.seal(plaintext, b"arn:aws:appflow:r:1:connectorprofile/p");
            assert_eq!(sealed[0], VERSION);
            assert_eq!(sealed.len(), MIN_SEALED_LEN + plaintext.len());
            let opened = secret_box
                .open(&sealed, b"arn:aws:appflow:r:1:connectorprofile/p")
                .unwrap();
            assert_eq!(opened, plaintext);
        }
    }

    #[test]
    fn sealing_twice_uses_fresh_nonces() {
        let secret_box = SecretBox::generate().unwrap();
        let first = secret_box.seal(b"same", b"owner");
        let second = secret_box.seal(b"same", b"owner");
        assert_ne!(first, second);
        assert_ne!(first[1..1 + NONCE_LEN], second[1..1 + NONCE_LEN]);
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let secret_box = SecretBox::generate().unwrap();
        let sealed = secret_box.seal(b"client-secret", b"owner");
        // Flip one bit in every position: nonce, ciphertext and tag are all authenticated.
        for index in 1..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert!(
                matches!(
                    secret_box.open(&tampered, b"owner"),
                    Err(SecretError::Unauthentic)
                ),
                "flipping byte {index} went unnoticed"
            );
        }
        let mut extended = sealed.clone();
        extended.push(0);
        assert!(matches!(
            secret_box.open(&extended, b"owner"),
            Err(SecretError::Unauthentic)
        ));
    }

    #[test]
    fn wrong_associated_data_fails() {
        let secret_box = SecretBox::generate().unwrap();
        let sealed = secret_box.seal(b"client-secret", b"connectorprofile/a");
        assert!(matches!(
            secret_box.open(&sealed, b"connectorprofile/b"),
            Err(SecretError::Unauthentic)
        ));
        assert!(matches!(
            secret_box.open(&sealed, b""),
            Err(SecretError::Unauthentic)
        ));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = SecretBox::from_key(&[7; KEY_LEN]).seal(b"secret", b"owner");
        let other = SecretBox::from_key(&[8; KEY_LEN]);
        assert!(matches!(
            other.open(&sealed, b"owner"),
            Err(SecretError::Unauthentic)
        ));
    }

    #[test]
    fn malformed_sealed_values_are_rejected() {
        let secret_box = SecretBox::generate().unwrap();
        assert!(matches!(
            secret_box.open(&[], b""),
            Err(SecretError::Truncated { len: 0 })
        ));
        let short = vec![VERSION; MIN_SEALED_LEN - 1];
        assert!(matches!(
            secret_box.open(&short, b""),
            Err(SecretError::Truncated { .. })
        ));
        let mut sealed = secret_box.seal(b"secret", b"owner");
        sealed[0] = 2;
        let error = secret_box.open(&sealed, b"owner").unwrap_err();
        assert!(matches!(error, SecretError::UnknownVersion(2)));
        assert_eq!(
            error.to_string(),
            "sealed value has unknown format version 2"
        );
    }

    #[test]
    fn debug_never_prints_the_key() {
        let key = [0xAB; KEY_LEN];
        let printed = format!("{:?}", SecretBox::from_key(&key));
        assert_eq!(printed, r#"SecretBox { key: "**REDACTED**" }"#);
    }

    #[test]
    fn key_file_is_created_once_and_reloaded() {
        let dir = TempDir::new();
        let path = dir.path().join("nested/dir/secret.key");
        let created = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), KEY_LEN);
        let sealed = created.seal(b"secret", b"owner");
        let reloaded = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(reloaded.open(&sealed, b"owner").unwrap(), b"secret");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_mode_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new();
        let path = dir.path().join("secret.key");
        SecretBox::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode was {mode:o}");
    }

    #[test]
    fn key_file_with_wrong_length_is_refused() {
        let dir = TempDir::new();
        let path = dir.path().join("secret.key");
        for contents in [&b""[..], &[1u8; KEY_LEN - 1], &[1u8; KEY_LEN + 1]] {
            fs::write(&path, contents).unwrap();
            let error = SecretBox::load_or_create(&path).unwrap_err();
            assert!(
                matches!(error, SecretError::KeyLength { len, .. } if len == contents.len() as u64)
            );
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
            // The bad file is left alone for the operator to inspect.
            assert_eq!(fs::read(&path).unwrap(), contents);
        }
    }

    #[test]
    fn a_directory_at_the_key_path_is_refused_with_its_path() {
        let dir = TempDir::new();
        // A directory where the key file should be cannot be read as a key.
        let path = dir.path().join("secret.key");
        fs::create_dir(&path).unwrap();
        let error = SecretBox::load_or_create(&path).unwrap_err();
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
}
