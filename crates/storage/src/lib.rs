//! Object storage for buckets: S3-compatible endpoints or local folders, via `object_store`.
//!
//! A [`Storage`] turns a bucket name into an `Arc<dyn ObjectStore>`:
//!
//! - **Local-folder mode** (no endpoint configured, the embedded default): bucket `b` is the
//!   directory `<local_root>/b`. No S3 server is needed; a bucket exists when its directory does.
//! - **S3 mode** (`SLUICE_S3_ENDPOINT` set): path-style requests to an S3-compatible endpoint
//!   (MinIO, moto, Ceph, AWS itself), plain HTTP allowed for `http://` endpoints, and
//!   object_store's retry with exponential backoff for throttling and 5xx answers.
//!
//! Bucket names are validated with the S3 rules in both modes ([`validate_bucket_name`]), which
//! also keeps path traversal out of local mode. Stores are built once per bucket and cached.
//!
//! [`MultipartWriter`] writes one object as a multipart upload that stays invisible until it is
//! completed, which is how destinations get all-or-nothing runs.
//!
//! A hand-written S3 client was rejected: `object_store` already does signing, retries,
//! multipart uploads and listing for every S3-compatible server, and its local-file backend
//! gives the embedded mode the same API.

mod bucket;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod upload;

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, RetryConfig};
use sluice_types::Sensitive;

pub use bucket::validate_bucket_name;
pub use upload::{DEFAULT_PART_SIZE, MIN_PART_SIZE, MultipartWriter};

/// Environment variable naming the S3-compatible endpoint; unset means local-folder mode.
pub const ENV_ENDPOINT: &str = "SLUICE_S3_ENDPOINT";
/// Environment variable naming the signing region (default `us-east-1`).
pub const ENV_REGION: &str = "SLUICE_S3_REGION";
/// Environment variable holding the access key id.
pub const ENV_ACCESS_KEY_ID: &str = "SLUICE_S3_ACCESS_KEY_ID";
/// Environment variable holding the secret access key.
pub const ENV_SECRET_ACCESS_KEY: &str = "SLUICE_S3_SECRET_ACCESS_KEY";

/// The region used when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A storage failure. Every variant names the bucket or object it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The bucket name breaks the S3 naming rules.
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName {
        /// The rejected name.
        name: String,
        /// Which rule was broken.
        reason: String,
    },
    /// The bucket does not exist.
    #[error("bucket {name:?} does not exist{hint}")]
    BucketNotFound {
        /// The bucket name.
        name: String,
        /// Where it was looked for, when that helps.
        hint: String,
    },
    /// The operation is not available in this storage mode.
    #[error("{0}")]
    Unsupported(String),
    /// The storage configuration is inconsistent.
    #[error("invalid storage configuration: {0}")]
    InvalidConfig(String),
    /// A local file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The object store reported an error.
    #[error("{context}: {source}")]
    ObjectStore {
        /// What was being done, naming the bucket or object.
        context: String,
        /// The cause.
        source: object_store::Error,
    },
    /// A write was attempted on an upload that was already closed.
    #[error("upload of {location} is already closed")]
    Closed {
        /// The object key.
        location: String,
    },
}

impl StorageError {
    /// Wraps an `object_store` error with context.
    pub fn object_store(context: impl Into<String>, source: object_store::Error) -> Self {
        Self::ObjectStore {
            context: context.into(),
            source,
        }
    }
}

/// How to reach buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// S3-compatible endpoint URL; `None` selects local-folder mode.
    pub endpoint: Option<String>,
    /// Signing region.
    pub region: String,
    /// Access key id; without it requests are sent unsigned.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Sensitive<String>>,
    /// Root folder of the buckets in local-folder mode.
    pub local_root: PathBuf,
}

impl StorageConfig {
    /// Reads `SLUICE_S3_ENDPOINT`, `SLUICE_S3_REGION` (default `us-east-1`),
    /// `SLUICE_S3_ACCESS_KEY_ID` and `SLUICE_S3_SECRET_ACCESS_KEY`; buckets of local-folder mode
    /// live in `<data_dir>/buckets`. Empty variables count as unset.
    pub fn from_env(data_dir: &FsPath) -> Self {
        Self::from_lookup(data_dir, |name| std::env::var(name).ok())
    }

    /// Local-folder mode with buckets under `local_root`.
    pub fn local(local_root: impl Into<PathBuf>) -> Self {
        Self {
            endpoint: None,
            region: DEFAULT_REGION.to_owned(),
            access_key_id: None,
            secret_access_key: None,
            local_root: local_root.into(),
        }
    }

    fn from_lookup(data_dir: &FsPath, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            endpoint: get(ENV_ENDPOINT),
            region: get(ENV_REGION).unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            access_key_id: get(ENV_ACCESS_KEY_ID),
            secret_access_key: get(ENV_SECRET_ACCESS_KEY).map(Sensitive::new),
            local_root: data_dir.join("buckets"),
        }
    }
}

/// Buckets as object stores; cheap to clone (clones share the cache).
#[derive(Debug, Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: StorageConfig,
    buckets: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Storage {
    /// Builds a storage handle. Nothing is contacted or created until a bucket is used.
    pub fn new(config: StorageConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                buckets: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The configuration this storage was built from.
    pub fn config(&self) -> &StorageConfig {
        &self.inner.config
    }

    /// True in local-folder mode (no endpoint configured).
    pub fn is_local(&self) -> bool {
        self.inner.config.endpoint.is_none()
    }

    /// A one-line description for logs; never contains a secret.
    pub fn describe(&self) -> String {
        let config = &self.inner.config;
        match &config.endpoint {
            None => format!("local folders under {}", config.local_root.display()),
            Some(endpoint) => format!(
                "S3-compatible endpoint {endpoint} (region {}, path-style, {})",
                config.region,
                if config.access_key_id.is_some() {
                    "signed requests"
                } else {
                    "unsigned requests"
                }
            ),
        }
    }

    /// The object store of bucket `name`, built on first use and cached.
    ///
    /// # Errors
    /// [`StorageError::InvalidBucketName`] for a name breaking the S3 rules;
    /// [`StorageError::BucketNotFound`] in local-folder mode when the folder does not exist (an
    /// S3 endpoint reports a missing bucket on first use instead); [`StorageError::ObjectStore`]
    /// when the store cannot be configured.
    pub fn bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
        validate_bucket_name(name)?;
        if let Some(store) = self.cache().get(name) {
            return Ok(Arc::clone(store));
        }
        let store = match &self.inner.config.endpoint {
            None => self.local_bucket(name)?,
            Some(endpoint) => self.s3_bucket(endpoint, name)?,
        };
        let mut cache = self.cache();
        let cached = cache.entry(name.to_owned()).or_insert(store);
        Ok(Arc::clone(cached))
    }

    /// Bucket names, sorted. Only local-folder mode can list buckets: `object_store` has no
    /// bucket-level API.
    ///
    /// # Errors
    /// [`StorageError::Unsupported`] with an S3 endpoint; [`StorageError::Io`] when the root
    /// folder cannot be read.
    pub fn list_buckets(&self) -> Result<Vec<String>, StorageError> {
        if !self.is_local() {
            return Err(StorageError::Unsupported(
                "listing buckets is not supported with an S3 endpoint".to_owned(),
            ));
        }
        let root = &self.inner.config.local_root;
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StorageError::Io {
                    context: format!("read bucket folder {}", root.display()),
                    source,
                });
            }
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StorageError::Io {
                context: format!("read bucket folder {}", root.display()),
                source,
            })?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            // Folders that could never be addressed as buckets are not buckets.
            if let Some(name) = entry.file_name().to_str()
                && is_dir
                && validate_bucket_name(name).is_ok()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Creates bucket `name` in local-folder mode (a no-op when it exists).
    ///
    /// # Errors
    /// [`StorageError::InvalidBucketName`]; [`StorageError::Unsupported`] with an S3 endpoint;
    /// [`StorageError::Io`] when the folder cannot be created.
    pub fn create_bucket(&self, name: &str) -> Result<(), StorageError> {
        validate_bucket_name(name)?;
        if !self.is_local() {
            return Err(StorageError::Unsupported(format!(
                "creating bucket {name:?} is not supported with an S3 endpoint; create it on the server"
            )));
        }
        let dir = self.inner.config.local_root.join(name);
        std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
            context: format!("create bucket folder {}", dir.display()),
            source,
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn ObjectStore>>> {
        // The map is always left consistent, so a panic elsewhere does not invalidate it.
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn local_bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
        let dir = self.inner.config.local_root.join(name);
        if !dir.is_dir() {
            return Err(StorageError::BucketNotFound {
                name: name.to_owned(),
                hint: format!(" (no folder {})", dir.display()),
            });
        }
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|source| StorageError::object_store(format!("open bucket {name:?}"), source))?
            // Removing the last object of a "folder" removes the folder, as on S3.
            .with_automatic_cleanup(true);
        Ok(Arc::new(store))
    }

    fn s3_bucket(&self, endpoint: &str, name: &str) -> Result<Arc<dyn ObjectStore>, StorageError> {
        let config = &self.inner.config;
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            max_retries: 8,
            retry_timeout: Duration::from_secs(120),
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(name)
            .with_region(&config.region)
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_retry(retry);
        builder = match (&config.access_key_id, &config.secret_access_key) {
            (Some(key_id), Some(secret)) => builder
                .with_access_key_id(key_id)
                .with_secret_access_key(secret.expose()),
            // Without credentials, never fall back to instance metadata: that would hang on
            // machines outside AWS. Unsigned requests work with anonymous-access servers.
            (None, None) => builder.with_skip_signature(true),
            (Some(_), None) => {
                return Err(StorageError::InvalidConfig(format!(
                    "{ENV_ACCESS_KEY_ID} is set but {ENV_SECRET_ACCESS_KEY} is not"
                )));
            }
            (None, Some(_)) => {
                return Err(StorageError::InvalidConfig(format!(
                    "{ENV_SECRET_ACCESS_KEY} is set but {ENV_ACCESS_KEY_ID} is not"
                )));
            }
        };
        let store = builder.build().map_err(|source| {
            StorageError::object_store(format!("configure bucket {name:?}"), source)
        })?;
        Ok(Arc::new(store))
    }
}

#[cfg(test)]
mod tests;
