//! JWT bearer assertions (RFC 7523) signed by Sluice with RS256.
//!
//! A pre-signed assertion expires within minutes, so it cannot renew an access token for long.
//! When Sluice holds the connected app's RSA private key instead, it signs a fresh assertion
//! for every exchange: [`JwtAssertion`] keeps the claims that identify the user (`iss`, `sub`,
//! `aud`) and adds `exp` at signing time.
//!
//! Claims can come from an *unsigned* JWT (`<header>.<claims>.`, empty signature), which is the
//! only shape AppFlow's `jwtToken` member admits besides a signed token: [`ClaimsTemplate`]
//! reads it. The private key never travels through the API; it is read from a PEM file
//! ([`RsaSigningKey::from_pem`]). The signing is aws-lc-rs's, which the workspace already
//! builds for TLS and S3.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Map, Value, json};
use sluice_types::Sensitive;

/// How long a signed assertion is valid (Salesforce accepts at most a few minutes).
pub const ASSERTION_LIFETIME: ChronoDuration = ChronoDuration::minutes(3);

/// A problem with a signing key or an assertion. Messages never quote key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The PEM text is not an RSA private key Sluice can use.
    #[error("not a usable RSA private key: {0}")]
    Key(String),
    /// An unsigned JWT's claims cannot be read.
    #[error("the JWT claims cannot be read: {0}")]
    Claims(String),
    /// Signing failed.
    #[error("signing the JWT failed")]
    Sign,
}

/// An RSA private key for RS256. `Debug` shows nothing of the key.
pub struct RsaSigningKey {
    key: KeyPair,
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaSigningKey")
            .field("modulus_bits", &(self.key.public_modulus_len() * 8))
            .finish()
    }
}

impl RsaSigningKey {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genpkey` writes) or
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`). Encrypted keys are refused.
    ///
    /// # Errors
    /// [`JwtError::Key`] saying which part of the file is wrong.
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        let (label, der) = pem_block(pem)?;
        let key = match label.as_str() {
            "PRIVATE KEY" => KeyPair::from_pkcs8(der.expose()),
            "RSA PRIVATE KEY" => KeyPair::from_der(der.expose()),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(JwtError::Key(
                    "the key is encrypted; store it unencrypted with restrictive file \
                     permissions"
                        .to_owned(),
                ));
            }
            other => {
                return Err(JwtError::Key(format!(
                    "expected a PEM block 'PRIVATE KEY' or 'RSA PRIVATE KEY', found '{other}'"
                )));
            }
        }
        .map_err(|error| JwtError::Key(format!("the {label} block was refused ({error})")))?;
        Ok(Self { key })
    }

    /// A key from unencrypted PKCS#8 DER bytes.
    ///
    /// # Errors
    /// [`JwtError::Key`] when the bytes are not an acceptable RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, JwtError> {
        KeyPair::from_pkcs8(der)
            .map(|key| Self { key })
            .map_err(|error| JwtError::Key(format!("PKCS#8 key refused ({error})")))
    }

    /// Signs `header.claims` (both JSON objects) and returns the compact JWT.
    ///
    /// # Errors
    /// [`JwtError::Sign`] when the signature cannot be computed.
    pub fn sign(&self, claims: &Map<String, Value>) -> Result<Sensitive<String>, JwtError> {
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string()));
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| JwtError::Sign)?;
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(Sensitive::new(input))
    }
}

/// The label and DER bytes of the single PEM block in `pem`.
fn pem_block(pem: &str) -> Result<(String, Sensitive<Vec<u8>>), JwtError> {
    let mut label = None;
    let mut body = String::new();
    for line in pem.lines().map(str::trim) {
        if let Some(rest) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if label.is_some() {
                return Err(JwtError::Key("more than one BEGIN line".to_owned()));
            }
            label = Some(rest.to_owned());
        } else if line.starts_with("-----END ") {
            break;
        } else if label.is_some() {
            if line.contains(':') {
                // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`) mark legacy encrypted keys.
                return Err(JwtError::Key(
                    "the key is encrypted; store it unencrypted with restrictive file \
                     permissions"
                        .to_owned(),
                ));
            }
            body.push_str(line);
        }
    }
    let label = label.ok_or_else(|| JwtError::Key("no '-----BEGIN ...-----' line".to_owned()))?;
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| JwtError::Key(format!("the {label} block is not valid base64")))?;
    Ok((label, Sensitive::new(der)))
}

/// Who an assertion speaks for: the claims of a JWT bearer grant, without `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsTemplate {
    /// `iss`: the OAuth client (connected app consumer key); `None` uses the configured one.
    pub issuer: Option<String>,
    /// `sub`: the user the tokens are for.
    pub subject: String,
    /// `aud`: the authorization server; `None` uses the configured login host.
    pub audience: Option<String>,
}

impl ClaimsTemplate {
    /// Reads the claims of an unsigned JWT (`<header>.<claims>.`). Returns `Ok(None)` for a
    /// signed JWT (non-empty third part), which is meant to be sent as it is.
    ///
    /// # Errors
    /// [`JwtError::Claims`] when the token is unsigned but its claims are not a JSON object
    /// with a string `sub`.
    pub fn from_unsigned_jwt(token: &str) -> Result<Option<Self>, JwtError> {
        let parts: Vec<&str> = token.trim().split('.').collect();
        let [_, claims, signature] = parts.as_slice() else {
            return Err(JwtError::Claims(format!(
                "expected three parts separated by '.', found {}",
                parts.len()
            )));
        };
        if !signature.is_empty() {
            return Ok(None);
        }
        // Be lenient about padding and alphabet: people build these by hand.
        let cleaned: String = claims
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                other => other,
            })
            .collect();
        let bytes = URL_SAFE_NO_PAD
            .decode(cleaned.as_bytes())
            .map_err(|_| JwtError::Claims("the claims part is not base64url".to_owned()))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| JwtError::Claims("the claims part is not JSON".to_owned()))?;
        let object = value
            .as_object()
            .ok_or_else(|| JwtError::Claims("the claims are not a JSON object".to_owned()))?;
        let text = |name: &str| -> Result<Option<String>, JwtError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(JwtError::Claims(format!(
                    "claim '{name}' must be a non-empty string"
                ))),
            }
        };
        let subject = text("sub")?.ok_or_else(|| {
            JwtError::Claims("claim 'sub' (the user to authorise as) is missing".to_owned())
        })?;
        Ok(Some(Self {
            issuer: text("iss")?,
            subject,
            audience: text("aud")?,
        }))
    }
}

/// Signs fresh RS256 assertions for one identity.
#[derive(Clone)]
pub struct JwtAssertion {
    key: Arc<RsaSigningKey>,
    issuer: String,
    subject: String,
    audience: String,
    lifetime: ChronoDuration,
}

impl fmt::Debug for JwtAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAssertion")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtAssertion {
    /// Assertions by `issuer` for `subject`, addressed to `audience`, signed with `key`.
    pub fn new(
        key: Arc<RsaSigningKey>,
        issuer: impl Into<String>,
        subject: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            key,
            issuer: issuer.into(),
            subject: subject.into(),
            audience: audience.into(),
            lifetime: ASSERTION_LIFETIME,
        }
    }

    /// The user the assertions are for.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A new assertion valid from `now` for [`ASSERTION_LIFETIME`].
    ///
    /// # Errors
    /// [`JwtError::Sign`] when signing fails.
    pub fn sign(&self, now: DateTime<Utc>) -> Result<Sensitive<String>, JwtError> {
        let mut claims = Map::new();
        claims.insert("iss".into(), Value::String(self.issuer.clone()));
        claims.insert("sub".into(), Value::String(self.subject.clone()));
        claims.insert("aud".into(), Value::String(self.audience.clone()));
        claims.insert("exp".into(), Value::from((now + self.lifetime).timestamp()));
        self.key.sign(&claims)
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    use super::*;

    fn generated() -> (String, Vec<u8>) {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let body = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        (pem, pair.public_key().as_ref().to_vec())
    }

    fn decode_part(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn signs_verifiable_rs256_assertions_with_fresh_expiry() {
        let (pem, public) = generated();
        let key = Arc::new(RsaSigningKey::from_pem(&pem).unwrap());
        assert!(format!("{key:?}").contains("2048"));
        assert!(!format!("{key:?}").contains("BEGIN"));
        let assertion = JwtAssertion::new(
            key,
            "consumer-key",
            "ünïcode.user@example.com",
            "https://login.example",
        );
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let token = assertion.sign(now).unwrap();
        let parts: Vec<&str> = token.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(decode_part(parts[0]), json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(
            decode_part(parts[1]),
            json!({"iss": "consumer-key", "sub": "ünïcode.user@example.com",
                   "aud": "https://login.example", "exp": 1_900_000_180})
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let message = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(message.as_bytes(), &signature)
            .expect("the signature verifies with the public key");
        // A tampered claim no longer verifies.
        let forged = format!("{}.{}x", parts[0], parts[1]);
        assert!(
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
                .verify(forged.as_bytes(), &signature)
                .is_err()
        );
        // Every exchange gets its own expiry.
        let later = assertion.sign(now + ChronoDuration::hours(1)).unwrap();
        let later_claims = decode_part(later.expose().split('.').nth(1).unwrap());
        assert_eq!(later_claims["exp"], 1_900_003_780);
    }

    #[test]
    fn bad_pem_input_is_explained_without_quoting_it() {
        let cases = [
            ("", "no '-----BEGIN"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                "found 'CERTIFICATE'",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\n%%%not base64%%%\n-----END PRIVATE KEY-----",
                "not valid base64",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "was refused",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                "encrypted",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----",
                "encrypted",
            ),
        ];
        for (pem, expected) in cases {
            let error = RsaSigningKey::from_pem(pem).unwrap_err().to_string();
            assert!(error.contains(expected), "{pem:?}: {error}");
            assert!(!error.contains("%%%"), "{error}");
        }
        assert!(RsaSigningKey::from_pkcs8_der(b"\x30\x00").is_err());
    }

    #[test]
    fn pkcs1_keys_are_accepted() {
        // The PKCS#8 wrapper of an RSA key ends with the PKCS#1 RSAPrivateKey as its last
        // OCTET STRING; re-wrapping it as 'RSA PRIVATE KEY' must give the same public key.
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        let bytes = pkcs8.as_ref();
        // PKCS#8 v1: SEQUENCE { INTEGER 0, AlgorithmIdentifier (15 bytes for rsaEncryption),
        // OCTET STRING { RSAPrivateKey } }. Find the OCTET STRING after the algorithm.
        let algorithm_end = bytes
            .windows(2)
            .position(|w| w == [0x05, 0x00])
            .expect("NULL parameters of rsaEncryption")
            + 2;
        assert_eq!(bytes[algorithm_end], 0x04, "OCTET STRING");
        let (len, header) = match bytes[algorithm_end + 1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(bytes[algorithm_end + 2]), 3),
            0x82 => (
                usize::from(bytes[algorithm_end + 2]) << 8 | usize::from(bytes[algorithm_end + 3]),
                4,
            ),
            other => panic!("unexpected length byte {other:#x}"),
        };
        let pkcs1 = &bytes[algorithm_end + header..algorithm_end + header + len];
        let pem = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            STANDARD.encode(pkcs1)
        );
        let key = RsaSigningKey::from_pem(&pem).unwrap();
        let claims = Map::new();
        let token = key.sign(&claims).unwrap();
        let parts: Vec<&str> = token.expose().split('.').collect();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref())
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .unwrap();
    }

    fn unsigned(claims: &Value) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn claims_templates_come_from_unsigned_jwts() {
        let template = ClaimsTemplate::from_unsigned_jwt(&unsigned(
            &json!({"iss": "app", "sub": "user@example.com", "aud": "https://test.example"}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            template,
            ClaimsTemplate {
                issuer: Some("app".into()),
                subject: "user@example.com".into(),
                audience: Some("https://test.example".into()),
            }
        );
        let minimal = ClaimsTemplate::from_unsigned_jwt(&unsigned(&json!({"sub": "u"})))
            .unwrap()
            .unwrap();
        assert_eq!((minimal.issuer, minimal.audience), (None, None));
        // Standard-alphabet base64 with padding is accepted too.
        let padded = format!(
            "e30.{}.",
            STANDARD.encode(json!({"sub": "ü?>~"}).to_string())
        );
        assert_eq!(
            ClaimsTemplate::from_unsigned_jwt(&padded)
                .unwrap()
                .unwrap()
                .subject,
            "ü?>~"
        );
        // A signed token is meant to be sent as it is.
        assert_eq!(
            ClaimsTemplate::from_unsigned_jwt("aaa.bbb.ccc").unwrap(),
            None
        );
        for (token, expected) in [
            ("only.two".to_owned(), "three parts"),
            ("a.%%.".to_owned(), "not base64url"),
            (
                format!("a.{}.", URL_SAFE_NO_PAD.encode("[1]")),
                "not a JSON object",
            ),
            (format!("a.{}.", URL_SAFE_NO_PAD.encode("nope")), "not JSON"),
            (unsigned(&json!({"iss": "app"})), "'sub'"),
            (unsigned(&json!({"sub": ""})), "'sub'"),
            (unsigned(&json!({"sub": "u", "aud": 7})), "'aud'"),
        ] {
            let error = ClaimsTemplate::from_unsigned_jwt(&token)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{token}: {error}");
        }
    }
}
