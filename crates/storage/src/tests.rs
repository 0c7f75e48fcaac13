use std::collections::HashMap;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::*;
use crate::testing::{create_s3_bucket, s3_storage, test_endpoint, unique_bucket_name};

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn config_defaults_to_local_mode_under_the_data_dir() {
    let config = StorageConfig::from_lookup(FsPath::new("/data"), lookup(&[]));
    assert_eq!(config.endpoint, None);
    assert_eq!(config.region, "us-east-1");
    assert_eq!(config.local_root, PathBuf::from("/data/buckets"));
    assert!(Storage::new(config).is_local());
}

#[test]
fn config_reads_every_variable_and_ignores_empty_ones() {
    let config = StorageConfig::from_lookup(
        FsPath::new("/d"),
        lookup(&[
            (ENV_ENDPOINT, "http://127.0.0.1:9000"),
            (ENV_REGION, "eu-west-3"),
            (ENV_ACCESS_KEY_ID, "AKID"),
            (ENV_SECRET_ACCESS_KEY, "s3cr3t"),
        ]),
    );
    assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(config.region, "eu-west-3");
    assert_eq!(config.access_key_id.as_deref(), Some("AKID"));
    assert_eq!(
        config
            .secret_access_key
            .as_ref()
            .map(|s| s.expose().as_str()),
        Some("s3cr3t")
    );

    let blank = StorageConfig::from_lookup(
        FsPath::new("/d"),
        lookup(&[(ENV_ENDPOINT, "  "), (ENV_REGION, "")]),
    );
    assert_eq!(blank.endpoint, None);
    assert_eq!(blank.region, "us-east-1");
}

#[test]
fn describe_and_debug_never_show_the_secret() {
    let mut config = StorageConfig::local("/tmp");
    config.endpoint = Some("http://127.0.0.1:5077".to_owned());
    config.access_key_id = Some("AKID".to_owned());
    config.secret_access_key = Some(Sensitive::new("hunter2-secret".to_owned()));
    let storage = Storage::new(config);
    storage.bucket("some-bucket").unwrap();
    let text = format!("{} {:?}", storage.describe(), storage);
    assert!(text.contains("http://127.0.0.1:5077"), "{text}");
    assert!(text.contains("signed requests"), "{text}");
    assert!(!text.contains("hunter2"), "secret leaked: {text}");
    assert!(text.contains("REDACTED"), "{text}");
}

#[test]
fn local_bucket_must_exist_and_is_cached() {
    let root = tempfile::tempdir().unwrap();
    let storage = Storage::new(StorageConfig::local(root.path()));

    let error = storage.bucket("missing-bucket").unwrap_err();
    assert!(
        matches!(error, StorageError::BucketNotFound { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("missing-bucket"), "{error}");

    storage.create_bucket("present").unwrap();
    let first = storage.bucket("present").unwrap();
    let second = storage.clone().bucket("present").unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "stores are cached and shared by clones"
    );
}

#[test]
fn invalid_names_are_rejected_before_touching_the_file_system() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("UPPER")).unwrap();
    let storage = Storage::new(StorageConfig::local(root.path().join("buckets")));
    for name in ["..", "../x", "a/b", "UPPER", ""] {
        let error = storage.bucket(name).unwrap_err();
        assert!(
            matches!(error, StorageError::InvalidBucketName { .. }),
            "{name}: {error}"
        );
        assert!(storage.create_bucket(name).is_err(), "{name}");
    }
    assert!(!root.path().join("buckets").exists(), "nothing was created");
}

#[test]
fn list_buckets_in_local_mode_skips_files_and_invalid_names() {
    let root = tempfile::tempdir().unwrap();
    let storage = Storage::new(StorageConfig::local(root.path()));
    assert_eq!(storage.list_buckets().unwrap(), Vec::<String>::new());
    storage.create_bucket("zeta").unwrap();
    storage.create_bucket("alpha").unwrap();
    std::fs::create_dir(root.path().join("Not_A_Bucket")).unwrap();
    std::fs::write(root.path().join("file.txt"), b"x").unwrap();
    assert_eq!(storage.list_buckets().unwrap(), vec!["alpha", "zeta"]);

    let missing = Storage::new(StorageConfig::local(root.path().join("nope")));
    assert!(missing.list_buckets().unwrap().is_empty());
}

#[test]
fn s3_mode_cannot_list_or_create_buckets_but_builds_stores_offline() {
    let storage = s3_storage("http://127.0.0.1:1");
    assert!(!storage.is_local());
    assert!(matches!(
        storage.list_buckets(),
        Err(StorageError::Unsupported(_))
    ));
    assert!(matches!(
        storage.create_bucket("abc"),
        Err(StorageError::Unsupported(_))
    ));
    assert!(
        storage.bucket("some-bucket").is_ok(),
        "building a store contacts nothing"
    );
}

#[test]
fn half_configured_credentials_are_an_error() {
    let mut config = StorageConfig::local("/tmp");
    config.endpoint = Some("http://127.0.0.1:1".to_owned());
    config.access_key_id = Some("AKID".to_owned());
    let error = Storage::new(config).bucket("abc").unwrap_err();
    assert!(error.to_string().contains(ENV_SECRET_ACCESS_KEY), "{error}");
}

/// Bytes of `len` that differ from part to part, so misordered parts would be caught.
fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

async fn keys(store: &dyn ObjectStore) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(None)
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

/// Writes a 12 MiB object in uneven chunks with 5 MiB parts (two full parts and a tail),
/// checks it is invisible before `complete` and byte-identical after.
async fn multipart_roundtrip(store: Arc<dyn ObjectStore>) {
    let data = pattern(12 * 1024 * 1024 + 123);
    let location = Path::parse("out/run-1/data.bin").unwrap();
    let mut writer = MultipartWriter::start(store.as_ref(), location.clone(), 1)
        .await
        .unwrap();
    for chunk in data.chunks(3 * 1024 * 1024 + 7) {
        writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        assert!(
            writer.buffered_bytes() < MIN_PART_SIZE,
            "full parts leave the buffer"
        );
    }
    assert_eq!(writer.bytes_written(), data.len() as u64);
    writer.close().await.unwrap();
    assert!(
        keys(store.as_ref()).await.is_empty(),
        "not visible before complete"
    );
    assert!(matches!(
        writer.write(Bytes::from_static(b"x")).await,
        Err(StorageError::Closed { .. })
    ));
    writer.complete().await.unwrap();

    assert_eq!(keys(store.as_ref()).await, vec!["out/run-1/data.bin"]);
    let read = store.get(&location).await.unwrap().bytes().await.unwrap();
    assert_eq!(read.len(), data.len());
    assert!(read == data, "content round-trips");
}

async fn abort_leaves_nothing(store: Arc<dyn ObjectStore>) {
    let location = Path::parse("out/aborted.bin").unwrap();
    let mut writer = MultipartWriter::start(store.as_ref(), location, 1)
        .await
        .unwrap();
    writer.write(pattern(6 * 1024 * 1024)).await.unwrap();
    writer.write(pattern(10)).await.unwrap();
    writer.close().await.unwrap();
    writer.abort().await;
    assert!(keys(store.as_ref()).await.is_empty());
}

async fn empty_object_completes(store: Arc<dyn ObjectStore>) {
    let location = Path::parse("empty.bin").unwrap();
    let writer = MultipartWriter::start(store.as_ref(), location.clone(), 1)
        .await
        .unwrap();
    writer.complete().await.unwrap();
    assert_eq!(store.head(&location).await.unwrap().size, 0);
}

fn local_store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let root = tempfile::tempdir().unwrap();
    let storage = Storage::new(StorageConfig::local(root.path()));
    storage.create_bucket("bucket").unwrap();
    let store = storage.bucket("bucket").unwrap();
    (root, store)
}

#[tokio::test]
async fn local_multipart_is_invisible_until_complete() {
    let (_root, store) = local_store();
    multipart_roundtrip(store).await;
}

#[tokio::test]
async fn local_multipart_abort_leaves_nothing() {
    let (_root, store) = local_store();
    abort_leaves_nothing(store).await;
}

#[tokio::test]
async fn local_empty_object() {
    let (_root, store) = local_store();
    empty_object_completes(store).await;
}

/// Runs `test` against a fresh bucket on the server named by `SLUICE_TEST_S3_ENDPOINT`.
async fn with_s3_bucket<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn ObjectStore>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(endpoint) = test_endpoint() else {
        eprintln!("skipped: set SLUICE_TEST_S3_ENDPOINT to run against an S3 server");
        return;
    };
    let bucket = unique_bucket_name("storage");
    create_s3_bucket(&endpoint, &bucket).await;
    let store = s3_storage(&endpoint).bucket(&bucket).unwrap();
    test(store).await;
}

#[tokio::test]
async fn s3_multipart_is_invisible_until_complete() {
    with_s3_bucket(multipart_roundtrip).await;
}

#[tokio::test]
async fn s3_multipart_abort_leaves_nothing() {
    with_s3_bucket(abort_leaves_nothing).await;
}

#[tokio::test]
async fn s3_empty_object() {
    with_s3_bucket(empty_object_completes).await;
}

#[tokio::test]
async fn s3_missing_bucket_is_reported_on_first_use() {
    let Some(endpoint) = test_endpoint() else {
        return;
    };
    let store = s3_storage(&endpoint)
        .bucket(&unique_bucket_name("absent"))
        .unwrap();
    let error = store.list(None).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(error.to_string().contains("NoSuchBucket"), "{error}");
}
