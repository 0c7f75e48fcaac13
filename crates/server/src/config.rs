//! Server configuration.
//!
//! [`ServerConfig::from_env`] reads the `SLUICE_*` environment variables so that the binary
//! and the tests build configurations the same way; every field is public so a caller can
//! override anything afterwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_connector_api::ConnectorRegistry;
use sluice_connectors::ConnectorSettings;
use sluice_storage::StorageConfig;
use sluice_types::{Clock, Sensitive, SharedClock, SystemClock};

use crate::error::ServerError;

/// Account id used in ARNs when `SLUICE_ACCOUNT_ID` is not set.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// Region used in ARNs when `SLUICE_REGION` is not set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Runs executing at once when `SLUICE_MAX_CONCURRENT_RUNS` is not set.
pub const DEFAULT_MAX_CONCURRENT_RUNS: usize = 4;

/// How often event sources are polled when `SLUICE_EVENT_POLL_SECONDS` is not set.
pub const DEFAULT_EVENT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Largest accepted request body.
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The access key that is always accepted, besides the API keys in the metadata store.
#[derive(Clone)]
pub struct RootCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Sensitive<String>,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl RootCredentials {
    /// A new random key pair: an access key id of `AKSL` + 16 uppercase letters and digits,
    /// and a 40-character secret, like AWS's.
    pub fn generate() -> Self {
        const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const SECRET_ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let pick = |alphabet: &[u8], len: usize| -> String {
            use rand::Rng as _;
            let mut rng = rand::rng();
            (0..len)
                .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
                .collect()
        };
        Self {
            access_key_id: format!("AKSL{}", pick(ID_ALPHABET, 16)),
            secret_access_key: Sensitive::new(pick(SECRET_ALPHABET, 40)),
        }
    }

    /// Reads the key pair stored at `path` (`{"accessKeyId": .., "secretAccessKey": ..}`), or
    /// generates one and stores it there with mode 0600. The flag is `true` when the pair was
    /// just created.
    ///
    /// # Errors
    /// [`ServerError::DataDir`] when the file cannot be read, parsed or written.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), ServerError> {
        let error = |message: String| ServerError::DataDir {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let stored: StoredRootCredentials =
                    serde_json::from_slice(&bytes).map_err(|e| {
                        error(format!(
                            "expected {{\"accessKeyId\": ..., \"secretAccessKey\": ...}} ({})",
                            crate::error::json_error_kind(&e)
                        ))
                    })?;
                let credentials = Self {
                    access_key_id: stored.access_key_id,
                    secret_access_key: stored.secret_access_key,
                };
                if credentials.access_key_id.is_empty()
                    || credentials.secret_access_key.expose().is_empty()
                {
                    return Err(error(
                        "accessKeyId and secretAccessKey must not be empty".into(),
                    ));
                }
                Ok((credentials, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let credentials = Self::generate();
                let stored = StoredRootCredentials {
                    access_key_id: credentials.access_key_id.clone(),
                    secret_access_key: credentials.secret_access_key.clone(),
                };
                let json = serde_json::to_vec_pretty(&stored).map_err(|e| error(e.to_string()))?;
                write_private(path, &json).map_err(|e| error(e.to_string()))?;
                Ok((credentials, true))
            }
            Err(e) => Err(error(e.to_string())),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRootCredentials {
    access_key_id: String,
    secret_access_key: Sensitive<String>,
}

/// Creates `path` with mode 0600 (never replacing an existing file) and writes `bytes`.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (see [`crate::Server::local_addr`]).
    pub listen: SocketAddr,
    /// Directory holding the metadata database, the encryption keys and (in local mode) the
    /// buckets.
    pub data_dir: PathBuf,
    /// Account id used in ARNs (`SLUICE_ACCOUNT_ID`, 12 digits).
    pub account_id: String,
    /// Region used in ARNs (`SLUICE_REGION`).
    pub region: String,
    /// Where bucket data lives.
    pub storage: StorageConfig,
    /// The connectors to serve; `None` (the default) builds Sluice's built-in registry over
    /// `storage` and `connector_settings`. Embedders and tests can supply their own.
    pub connectors: Option<Arc<dyn ConnectorRegistry>>,
    /// Settings of the built-in connectors (`SLUICE_SALESFORCE_*`: login hosts, connected
    /// app, JWT signing key). The server adds its credentials store, which writes renewed
    /// OAuth tokens back to their connector profiles.
    pub connector_settings: ConnectorSettings,
    /// Runs executing at once; further runs wait (`SLUICE_MAX_CONCURRENT_RUNS`).
    pub max_concurrent_runs: usize,
    /// Runs that may be in progress or waiting at once; beyond it `StartFlow` answers
    /// `ServiceQuotaExceededException` (AppFlow's concurrent-run quota is 1000).
    pub max_pending_runs: usize,
    /// The root access key (`SLUICE_ROOT_ACCESS_KEY_ID` / `SLUICE_ROOT_SECRET_ACCESS_KEY`).
    pub root_credentials: Option<RootCredentials>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// How often a running run's counters are written to its execution record.
    pub progress_interval: Duration,
    /// How long shutdown waits for canceled runs to record their final status.
    pub shutdown_grace: Duration,
    /// The time schedules follow: the system clock, or a test clock
    /// (`SLUICE_TEST_CLOCK_FILE`, see [`FileClock`]).
    pub clock: SharedClock,
    /// How often the scheduler looks at the clock even when no tick is due; set for clocks
    /// that jump (tests), `None` to rely on the ticks alone.
    pub scheduler_poll: Option<Duration>,
    /// How often the sources of active event flows are polled for new events
    /// (`SLUICE_EVENT_POLL_SECONDS`).
    pub event_poll_interval: Duration,
}

impl ServerConfig {
    /// A configuration with defaults, storage and connector settings from the environment
    /// (`SLUICE_S3_*`, `SLUICE_SALESFORCE_*`) and no root key.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            listen,
            storage: StorageConfig::from_env(&data_dir),
            connectors: None,
            connector_settings: ConnectorSettings::from_env(),
            data_dir,
            account_id: DEFAULT_ACCOUNT_ID.to_string(),
            region: DEFAULT_REGION.to_string(),
            max_concurrent_runs: DEFAULT_MAX_CONCURRENT_RUNS,
            max_pending_runs: 1000,
            root_credentials: None,
            body_limit: DEFAULT_BODY_LIMIT,
            progress_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            scheduler_poll: None,
            event_poll_interval: DEFAULT_EVENT_POLL_INTERVAL,
        }
    }

    /// [`ServerConfig::new`] plus `SLUICE_ACCOUNT_ID`, `SLUICE_REGION`,
    /// `SLUICE_MAX_CONCURRENT_RUNS` and the root key variables.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the variable that is set to an invalid value.
    pub fn from_env(listen: SocketAddr, data_dir: impl Into<PathBuf>) -> Result<Self, ServerError> {
        let mut config = Self::new(listen, data_dir);
        if let Some(account) = env_var("SLUICE_ACCOUNT_ID") {
            config.account_id = account;
        }
        if let Some(region) = env_var("SLUICE_REGION") {
            config.region = region;
        }
        if let Some(runs) = env_var("SLUICE_MAX_CONCURRENT_RUNS") {
            config.max_concurrent_runs = runs.parse().map_err(|_| {
                ServerError::Config(format!(
                    "SLUICE_MAX_CONCURRENT_RUNS must be a positive integer, got '{runs}'"
                ))
            })?;
        }
        if let Some(seconds) = env_var("SLUICE_EVENT_POLL_SECONDS") {
            let seconds: f64 = seconds
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.05 && *s <= 86_400.0)
                .ok_or_else(|| {
                    ServerError::Config(format!(
                        "SLUICE_EVENT_POLL_SECONDS must be a number of seconds between 0.05 and \
                         86400, got '{seconds}'"
                    ))
                })?;
            config.event_poll_interval = Duration::from_secs_f64(seconds);
        }
        if let Some(path) = env_var(TEST_CLOCK_ENV) {
            config.clock = Arc::new(FileClock::open(PathBuf::from(path))?);
            config.scheduler_poll = Some(TEST_CLOCK_POLL);
        }
        match (
            env_var("SLUICE_ROOT_ACCESS_KEY_ID"),
            env_var("SLUICE_ROOT_SECRET_ACCESS_KEY"),
        ) {
            (Some(access_key_id), Some(secret)) => {
                config.root_credentials = Some(RootCredentials {
                    access_key_id,
                    secret_access_key: Sensitive::new(secret),
                });
            }
            (None, None) => {}
            _ => {
                return Err(ServerError::Config(
                    "set both SLUICE_ROOT_ACCESS_KEY_ID and SLUICE_ROOT_SECRET_ACCESS_KEY, or \
                     neither"
                        .into(),
                ));
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values a caller may have set by hand.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the invalid field.
    pub fn validate(&self) -> Result<(), ServerError> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ServerError::Config(format!(
                "account id must be 12 digits (SLUICE_ACCOUNT_ID), got '{}'",
                self.account_id
            )));
        }
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 64
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(ServerError::Config(format!(
                "region must look like 'us-east-1' (SLUICE_REGION), got '{}'",
                self.region
            )));
        }
        if self.max_concurrent_runs == 0 {
            return Err(ServerError::Config(
                "max concurrent runs (SLUICE_MAX_CONCURRENT_RUNS) must be at least 1".into(),
            ));
        }
        if self.max_pending_runs < self.max_concurrent_runs {
            return Err(ServerError::Config(
                "max pending runs must be at least max concurrent runs".into(),
            ));
        }
        if let Some(root) = &self.root_credentials
            && (root.access_key_id.is_empty() || root.secret_access_key.expose().is_empty())
        {
            return Err(ServerError::Config(
                "the root access key id and secret must not be empty".into(),
            ));
        }
        if self.body_limit == 0 {
            return Err(ServerError::Config("body limit must be positive".into()));
        }
        Ok(())
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("metadata.sqlite")
    }

    /// The key that encrypts connector credentials and API-key secrets.
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    /// The key that fingerprints idempotent requests.
    pub fn fingerprint_key_path(&self) -> PathBuf {
        self.data_dir.join("fingerprint.key")
    }
}

/// The variable that selects the test clock: the path of a file holding "now" in epoch
/// milliseconds.
pub const TEST_CLOCK_ENV: &str = "SLUICE_TEST_CLOCK_FILE";

/// How often the scheduler looks at a test clock, which moves by jumps.
pub const TEST_CLOCK_POLL: Duration = Duration::from_millis(200);

/// A test clock: "now" is the epoch-millisecond integer held in a file, re-read at every call,
/// so an end-to-end test moves the server's time by rewriting the file. A file that cannot be
/// read or parsed (e.g. caught half-written) keeps the last good time, with a warning.
#[derive(Debug)]
pub struct FileClock {
    path: PathBuf,
    last: std::sync::Mutex<DateTime<Utc>>,
}

impl FileClock {
    /// A clock over `path`, which must hold a valid time now.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the file when it cannot be read or does not hold epoch
    /// milliseconds.
    pub fn open(path: PathBuf) -> Result<Self, ServerError> {
        let now = read_clock_file(&path).map_err(|problem| {
            ServerError::Config(format!("{TEST_CLOCK_ENV} {}: {problem}", path.display()))
        })?;
        tracing::warn!(path = %path.display(), %now, "using the test clock: time comes from a file");
        Ok(Self {
            path,
            last: std::sync::Mutex::new(now),
        })
    }
}

fn read_clock_file(path: &Path) -> Result<DateTime<Utc>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| error.to_string())?;
    let millis: i64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{}' is not an integer of epoch milliseconds", text.trim()))?;
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| format!("{millis} ms is out of the representable range"))
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match read_clock_file(&self.path) {
            Ok(now) => *last = now,
            Err(problem) => {
                tracing::warn!(path = %self.path.display(), problem, "test clock file unreadable; keeping the last time");
            }
        }
        *last
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Creates `path` (and parents) if needed.
pub(crate) fn ensure_dir(path: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(path).map_err(|error| ServerError::DataDir {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig::new("127.0.0.1:0".parse().unwrap(), "/tmp/sluice-test")
    }

    #[test]
    fn the_file_clock_follows_its_file_and_survives_bad_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now.ms");
        let missing = FileClock::open(path.clone()).unwrap_err().to_string();
        assert!(missing.contains("SLUICE_TEST_CLOCK_FILE") && missing.contains("now.ms"));
        std::fs::write(&path, "soon").unwrap();
        let garbage = FileClock::open(path.clone()).unwrap_err().to_string();
        assert!(garbage.contains("'soon'"), "{garbage}");
        std::fs::write(&path, "99999999999999999").unwrap();
        assert!(FileClock::open(path.clone()).is_err(), "out of range");

        std::fs::write(&path, "1893456000000\n").unwrap();
        let clock = FileClock::open(path.clone()).unwrap();
        let start: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(clock.now(), start);
        std::fs::write(&path, " 1893456060123 ").unwrap();
        assert_eq!(clock.now(), start + chrono::TimeDelta::milliseconds(60_123));
        // Half-written or removed: the last good time holds.
        std::fs::write(&path, "").unwrap();
        assert_eq!(clock.now(), start + chrono::TimeDelta::milliseconds(60_123));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(clock.now(), start + chrono::TimeDelta::milliseconds(60_123));
        // Time may go back, as tests need.
        std::fs::write(&path, "-1000").unwrap();
        assert_eq!(clock.now(), DateTime::from_timestamp_millis(-1000).unwrap());
    }

    #[test]
    fn defaults_are_valid() {
        let config = config();
        config.validate().unwrap();
        assert_eq!(config.account_id, "000000000000");
        assert_eq!(config.region, "us-east-1");
        assert_eq!(
            config.database_path(),
            Path::new("/tmp/sluice-test/metadata.sqlite")
        );
    }

    #[test]
    fn invalid_values_name_the_field() {
        let mut bad = config();
        bad.account_id = "12345".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("SLUICE_ACCOUNT_ID")
        );
        let mut bad = config();
        bad.region = "US East".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("SLUICE_REGION")
        );
        let mut bad = config();
        bad.max_concurrent_runs = 0;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("SLUICE_MAX_CONCURRENT_RUNS")
        );
        let mut bad = config();
        bad.root_credentials = Some(RootCredentials {
            access_key_id: "AK".into(),
            secret_access_key: Sensitive::new(String::new()),
        });
        assert!(bad.validate().unwrap_err().to_string().contains("root"));
    }

    #[test]
    fn generated_root_credentials_have_the_documented_shape() {
        let a = RootCredentials::generate();
        let b = RootCredentials::generate();
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_eq!(a.access_key_id.len(), 20);
        assert!(a.access_key_id.starts_with("AKSL"));
        assert!(
            a.access_key_id[4..]
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_eq!(a.secret_access_key.expose().len(), 40);
    }

    #[test]
    fn root_credentials_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root-credentials.json");
        let (created, fresh) = RootCredentials::load_or_generate(&path).unwrap();
        assert!(fresh);
        let (loaded, fresh) = RootCredentials::load_or_generate(&path).unwrap();
        assert!(!fresh);
        assert_eq!(loaded.access_key_id, created.access_key_id);
        assert_eq!(loaded.secret_access_key, created.secret_access_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(
            &path,
            br#"{"accessKeyId": "AK", "secretAccessKey": "s3cr3t-value"#,
        )
        .unwrap();
        let error = RootCredentials::load_or_generate(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("root-credentials.json"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
    }

    #[test]
    fn root_credentials_debug_hides_the_secret() {
        let root = RootCredentials {
            access_key_id: "AKSLEXAMPLE".into(),
            secret_access_key: Sensitive::new("very-secret".into()),
        };
        let printed = format!("{root:?}");
        assert!(printed.contains("AKSLEXAMPLE"));
        assert!(!printed.contains("very-secret"));
    }
}
