//! Tests: wire formats and settings without a server, and the connector against a real
//! PostgreSQL when `SLUICE_TEST_POSTGRES_URL` names one (a superuser URL, e.g. from
//! `scripts/start-postgres.sh`). Without it the server tests print a notice and pass.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use futures::StreamExt;
use sluice_api_model as model;
use sluice_connector_api::{
    Connector, ConnectorErrorKind, EntityContext, IncrementalWindow, Profile, ReadRequest,
    ReadStats, WriteRequest,
};
use sluice_types::Sensitive;

use crate::PostgresConnector;
use crate::config::{
    ConnectionConfig, DestinationConfig, SourceConfig, SslMode, TableName, WriteMode,
};
use crate::decode::{CopyDecoder, Kind, ReadColumn, numeric_to_i128, numeric_typmod};
use crate::encode::{
    encode_numeric, prepare, stage_column, write_header, write_row, write_trailer,
};

// ---------------------------------------------------------------- wire formats

/// Every row of `batches` as `a|b|c` text (nulls as `NULL`), for comparisons.
fn format_rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = arrow_cast::display::FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            out.push(cells.join("|"));
        }
    }
    out
}

fn read_columns(fields: &[(&str, Kind)]) -> Vec<ReadColumn> {
    fields
        .iter()
        .map(|(name, kind)| ReadColumn {
            name: (*name).to_owned(),
            type_name: format!("{kind:?}"),
            kind: *kind,
            select: String::new(),
            nullable: true,
        })
        .collect()
}

/// A batch with every natively decoded type, including nulls, unicode and edge values.
fn sample_batch() -> RecordBatch {
    let mut b = BooleanBuilder::new();
    b.append_value(true);
    b.append_null();
    b.append_value(false);
    let mut i2 = Int16Builder::new();
    i2.append_value(i16::MIN);
    i2.append_value(0);
    i2.append_null();
    let mut i4 = Int32Builder::new();
    i4.append_value(i32::MAX);
    i4.append_null();
    i4.append_value(-1);
    let mut i8 = Int64Builder::new();
    i8.append_value(i64::MIN);
    i8.append_value(i64::MAX);
    i8.append_null();
    let mut f4 = Float32Builder::new();
    f4.append_value(1.5);
    f4.append_value(f32::NAN);
    f4.append_null();
    let mut f8 = Float64Builder::new();
    f8.append_value(-0.0);
    f8.append_value(f64::INFINITY);
    f8.append_value(1e-300);
    let mut dec = Decimal128Builder::new();
    dec.append_value(-1);
    dec.append_value(9_999_999_999);
    dec.append_null();
    let mut text = StringBuilder::new();
    text.append_value("");
    text.append_value("héllo wörld ✓ 🦀 \u{0}-free");
    text.append_null();
    let mut bin = BinaryBuilder::new();
    bin.append_value([0u8, 255, 1]);
    bin.append_value([]);
    bin.append_null();
    let mut date = Date32Builder::new();
    date.append_value(0);
    date.append_value(-719_162);
    date.append_null();
    let mut ts = TimestampMicrosecondBuilder::new();
    ts.append_value(0);
    ts.append_value(-1);
    ts.append_value(1_700_000_000_123_456);
    let mut tstz = TimestampMicrosecondBuilder::new();
    tstz.append_null();
    tstz.append_value(946_684_800_000_000);
    tstz.append_value(253_402_300_799_999_999);
    let mut time = Time64MicrosecondBuilder::new();
    time.append_value(0);
    time.append_value(86_399_999_999);
    time.append_null();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(b.finish()),
        Arc::new(i2.finish()),
        Arc::new(i4.finish()),
        Arc::new(i8.finish()),
        Arc::new(f4.finish()),
        Arc::new(f8.finish()),
        Arc::new(dec.finish().with_precision_and_scale(12, 2).unwrap()),
        Arc::new(text.finish()),
        Arc::new(bin.finish()),
        Arc::new(date.finish()),
        Arc::new(ts.finish()),
        Arc::new(tstz.finish().with_timezone("+00:00")),
        Arc::new(time.finish()),
    ];
    let kinds = sample_kinds();
    let schema = Schema::new(
        kinds
            .iter()
            .map(|(name, kind)| Field::new(*name, kind.data_type(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn sample_kinds() -> Vec<(&'static str, Kind)> {
    vec![
        ("b", Kind::Bool),
        ("i2", Kind::Int2),
        ("i4", Kind::Int4),
        ("i8", Kind::Int8),
        ("f4", Kind::Float4),
        ("f8", Kind::Float8),
        (
            "dec",
            Kind::Numeric {
                precision: 12,
                scale: 2,
            },
        ),
        ("text", Kind::Text),
        ("bin", Kind::Bytea),
        ("date", Kind::Date),
        ("ts", Kind::Timestamp),
        ("tstz", Kind::Timestamptz),
        ("time", Kind::Time),
    ]
}

fn encode_batch(batch: &RecordBatch) -> Vec<u8> {
    let stage_columns: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| stage_column(f.data_type()))
        .collect();
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let (arrays, stages) = prepare(batch.columns(), &stage_columns, &names).unwrap();
    let mut out = Vec::new();
    write_header(&mut out);
    for row in 0..batch.num_rows() {
        write_row(&mut out, &arrays, &stages, row).unwrap();
    }
    write_trailer(&mut out);
    out
}

#[test]
fn copy_round_trip_of_every_native_type_in_any_chunking() {
    let batch = sample_batch();
    let stream = encode_batch(&batch);
    for chunk_size in [1, 2, 3, 7, 64, stream.len()] {
        let mut decoder = CopyDecoder::new("t", read_columns(&sample_kinds()), 1024);
        for chunk in stream.chunks(chunk_size) {
            decoder.push(chunk).unwrap();
        }
        decoder.finish().unwrap();
        let decoded = decoder.take_batch().unwrap().unwrap();
        // Compare through formatted values: NaN compares unequal to itself as a float.
        assert_eq!(decoded.schema(), batch.schema());
        assert_eq!(
            format_rows(&[decoded]),
            format_rows(std::slice::from_ref(&batch)),
            "chunk size {chunk_size}"
        );
    }
}

#[test]
fn batches_are_cut_at_the_requested_size() {
    let batch = sample_batch();
    let stream = encode_batch(&batch);
    let mut decoder = CopyDecoder::new("t", read_columns(&sample_kinds()), 2);
    let mut sizes = Vec::new();
    for chunk in stream.chunks(5) {
        decoder.push(chunk).unwrap();
        if decoder.batch_ready() {
            sizes.push(decoder.take_batch().unwrap().unwrap().num_rows());
        }
    }
    decoder.finish().unwrap();
    sizes.extend(decoder.take_batch().unwrap().map(|b| b.num_rows()));
    assert_eq!(sizes, vec![2, 1]);
    assert!(decoder.take_batch().unwrap().is_none());
}

#[test]
fn malformed_copy_streams_are_errors_naming_table_row_and_column() {
    let columns = read_columns(&[("id", Kind::Int4), ("name", Kind::Text)]);
    // Wrong signature.
    let mut decoder = CopyDecoder::new("s.t", columns.clone(), 10);
    let err = decoder
        .push(b"PGCOPX\n\xff\r\n\0\0\0\0\0\0\0\0\0")
        .unwrap_err();
    assert!(err.to_string().contains("binary signature"), "{err}");

    let mut header = Vec::new();
    write_header(&mut header);
    let row = |fields: &[Option<&[u8]>]| {
        let mut out = (fields.len() as i16).to_be_bytes().to_vec();
        for f in fields {
            match f {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    out.extend_from_slice(v);
                }
            }
        }
        out
    };
    // Wrong field count.
    let mut decoder = CopyDecoder::new("s.t", columns.clone(), 10);
    let mut data = header.clone();
    data.extend(row(&[Some(&1i32.to_be_bytes())]));
    let err = decoder.push(&data).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::BadData);
    assert!(
        err.to_string()
            .contains("table s.t, row 1: row has 1 fields, expected 2"),
        "{err}"
    );
    // Invalid UTF-8 and a wrong-sized integer name their row and column.
    let mut decoder = CopyDecoder::new("s.t", columns.clone(), 10);
    let mut data = header.clone();
    data.extend(row(&[Some(&1i32.to_be_bytes()), Some(b"ok")]));
    data.extend(row(&[None, Some(b"\xff\xfe")]));
    let err = decoder.push(&data).unwrap_err();
    assert!(
        err.to_string()
            .contains("row 2: column name (Text): text is not valid UTF-8"),
        "{err}"
    );
    let mut decoder = CopyDecoder::new("s.t", columns.clone(), 10);
    let mut data = header.clone();
    data.extend(row(&[Some(&[0, 1]), None]));
    let err = decoder.push(&data).unwrap_err();
    assert!(
        err.to_string()
            .contains("column id (Int4): expected 4 bytes, got 2"),
        "{err}"
    );
    // A negative length other than -1 (NULL) is corrupt.
    let mut decoder = CopyDecoder::new("s.t", columns.clone(), 10);
    let mut data = header.clone();
    data.extend_from_slice(&2i16.to_be_bytes());
    data.extend_from_slice(&(-2i32).to_be_bytes());
    let err = decoder.push(&data).unwrap_err();
    assert!(
        err.to_string()
            .contains("row 1: field has invalid length -2"),
        "{err}"
    );
    // A stream cut before its trailer is an error, not a short result.
    let mut decoder = CopyDecoder::new("s.t", columns, 10);
    let mut data = header.clone();
    data.extend(row(&[Some(&7i32.to_be_bytes()), Some(b"x")]));
    decoder.push(&data).unwrap();
    let err = decoder.finish().unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Unavailable);
    assert!(
        err.to_string().contains("ended early, after 1 rows"),
        "{err}"
    );
}

#[test]
fn infinite_dates_and_timestamps_are_rejected() {
    let columns = read_columns(&[("d", Kind::Date), ("t", Kind::Timestamptz)]);
    let mut data = Vec::new();
    write_header(&mut data);
    data.extend_from_slice(&2i16.to_be_bytes());
    data.extend_from_slice(&4i32.to_be_bytes());
    data.extend_from_slice(&1i32.to_be_bytes());
    data.extend_from_slice(&8i32.to_be_bytes());
    data.extend_from_slice(&i64::MAX.to_be_bytes());
    let mut decoder = CopyDecoder::new("t", columns, 10);
    let err = decoder.push(&data).unwrap_err();
    assert!(err.to_string().contains("column t"), "{err}");
    assert!(err.to_string().contains("infinity"), "{err}");
}

fn numeric_bytes(value: i128, scale: i8) -> Vec<u8> {
    let mut out = Vec::new();
    encode_numeric(&mut out, value, scale);
    out
}

#[test]
fn numeric_wire_format_matches_postgres() {
    // 1234.5 as numeric(12,2): digits [1234, 5000], weight 0, dscale 2.
    assert_eq!(
        numeric_bytes(123_450, 2),
        [0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xd2, 0x13, 0x88]
    );
    // -0.01: one digit 100 at weight -1.
    assert_eq!(
        numeric_bytes(-1, 2),
        [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0, 100]
    );
    // Zero has no digits.
    assert_eq!(numeric_bytes(0, 3), [0, 0, 0, 0, 0, 0, 0, 3]);
    // 10000 with scale 0: one digit 1 at weight 1.
    assert_eq!(numeric_bytes(10_000, 0), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
}

#[test]
fn numeric_digits_by_division_match_the_decimal_text_path() {
    let values = [
        0,
        1,
        -1,
        9_999,
        10_000,
        -10_001,
        123_456_789,
        100_000_000,
        7_919_000_000,
        10i128.pow(37),
        -(10i128.pow(38) - 1),
        i128::MAX,
        i128::MIN,
        i128::MIN + 1,
    ];
    for value in values {
        for scale in [0, 1, 2, 3, 4, 5, 8, 9, 17, 37, 38, -1, -3, -4, -30, i8::MIN] {
            let mut text = Vec::new();
            crate::encode::encode_numeric_text(&mut text, value, scale);
            assert_eq!(numeric_bytes(value, scale), text, "{value} scale {scale}");
        }
    }
}

#[test]
fn numeric_round_trips_and_checks_precision() {
    let max38 = 10i128.pow(38) - 1;
    for (value, precision, scale) in [
        (0, 1, 0),
        (1, 1, 0),
        (-123_456_789, 12, 2),
        (max38, 38, 0),
        (-max38, 38, 10),
        (5, 38, 37),
        (100_000_000, 12, 4),
    ] {
        let bytes = numeric_bytes(value, scale);
        assert_eq!(
            numeric_to_i128(&bytes, precision, scale).unwrap(),
            value,
            "{value} numeric({precision},{scale})"
        );
    }
    // 123.45 does not fit numeric(4,2) nor scale 1.
    let bytes = numeric_bytes(12_345, 2);
    assert!(
        numeric_to_i128(&bytes, 4, 2)
            .unwrap_err()
            .contains("does not fit numeric(4,2)")
    );
    assert!(
        numeric_to_i128(&bytes, 10, 1)
            .unwrap_err()
            .contains("more than 1 decimal places")
    );
    // NaN, infinity, truncation.
    assert!(
        numeric_to_i128(&[0, 0, 0, 0, 0xc0, 0, 0, 0], 10, 2)
            .unwrap_err()
            .contains("NaN")
    );
    assert!(
        numeric_to_i128(&[0, 0, 0, 0, 0xd0, 0, 0, 0], 10, 2)
            .unwrap_err()
            .contains("infinity")
    );
    assert!(
        numeric_to_i128(&[0, 2, 0, 0, 0, 0, 0, 0, 0, 1], 10, 2)
            .unwrap_err()
            .contains("truncated")
    );
    // Huge exponents do not overflow silently.
    let huge = [0, 1, 0x7f, 0xff, 0, 0, 0, 0, 0, 1];
    assert!(
        numeric_to_i128(&huge, 38, 0)
            .unwrap_err()
            .contains("does not fit")
    );
}

#[test]
fn numeric_type_modifiers() {
    let typmod = |p: i32, s: i32| ((p << 16) | (s & 0x7ff)) + 4;
    assert_eq!(numeric_typmod(typmod(12, 2)), Some((12, 2)));
    assert_eq!(numeric_typmod(typmod(38, 0)), Some((38, 0)));
    assert_eq!(numeric_typmod(-1), None, "unconstrained numeric");
    assert_eq!(numeric_typmod(typmod(39, 2)), None, "wider than Decimal128");
    assert_eq!(numeric_typmod(typmod(5, -2)), None, "negative scale");
}

#[test]
fn unusual_arrow_types_are_sent_as_text() {
    let col = stage_column(&DataType::LargeUtf8);
    assert_eq!(col.sql_type, "text");
    assert!(col.via_text);
    let col = stage_column(&DataType::Decimal128(12, 2));
    assert_eq!(col.sql_type, "numeric(12,2)");
    let item = Arc::new(Field::new("item", DataType::Int32, true));
    let list: ArrayRef = Arc::new(arrow_array::ListArray::from_iter_primitive::<
        arrow_array::types::Int32Type,
        _,
        _,
    >(vec![Some(vec![Some(1), None]), None]));
    let col = stage_column(&DataType::List(item));
    assert_eq!(
        (col.stage, col.via_text),
        (crate::encode::StageType::Text, true)
    );
    let (arrays, _) = prepare(&[list], &[col], &["tags".to_owned()]).unwrap();
    assert_eq!(
        format_rows(&[RecordBatch::try_from_iter([("tags", arrays[0].clone())]).unwrap()]),
        ["[1, ]", "NULL"]
    );
}

// ---------------------------------------------------------------- settings

fn profile(props: serde_json::Value, creds: serde_json::Value) -> Profile {
    Profile {
        name: "pg".into(),
        connector_type: model::ConnectorType::CustomConnector,
        connector_label: Some("Postgres".into()),
        properties: serde_json::json!({"CustomConnector": {"profileProperties": props}}),
        credentials: Sensitive::new(serde_json::json!({"CustomConnector": creds})),
    }
}

fn basic(user: &str, password: &str) -> serde_json::Value {
    serde_json::json!({"authenticationType": "BASIC", "basic": {"username": user, "password": password}})
}

#[test]
fn profile_settings_are_parsed_and_checked() {
    let config = ConnectionConfig::from_profile(&profile(
        serde_json::json!({"host": "db", "database": "crm"}),
        basic("u", "secret"),
    ))
    .unwrap();
    assert_eq!(
        (config.host.as_str(), config.port, config.database.as_str()),
        ("db", 5432, "crm")
    );
    assert!(!format!("{config:?}").contains("secret"));

    let err = |props, creds| {
        ConnectionConfig::from_profile(&profile(props, creds))
            .unwrap_err()
            .to_string()
    };
    assert!(
        err(serde_json::json!({"database": "crm"}), basic("u", "p"))
            .contains("profileProperties.host is required")
    );
    assert!(
        err(
            serde_json::json!({"host": "db", "database": "crm", "port": "99999"}),
            basic("u", "p")
        )
        .contains("port must be a port number (1-65535), not \"99999\"")
    );
    let allow = ConnectionConfig::from_profile(&profile(
        serde_json::json!({"host": "db", "database": "crm", "sslmode": "allow"}),
        basic("u", "p"),
    ))
    .unwrap_err();
    assert_eq!(allow.kind, ConnectorErrorKind::Unsupported);
    assert!(
        err(
            serde_json::json!({"host": "db", "database": "crm", "hostaddr": "db.example"}),
            basic("u", "p")
        )
        .contains("profileProperties.hostaddr must be an IP address, not \"db.example\"")
    );
    assert!(
        err(
            serde_json::json!({"host": "db", "database": "crm", "sslmode": "maybe"}),
            basic("u", "p")
        )
        .contains("sslmode must be one of")
    );
    assert!(
        err(
            serde_json::json!({"host": "db", "database": "crm"}),
            serde_json::json!({"authenticationType": "OAUTH2"})
        )
        .contains("authenticationType BASIC")
    );
    let message = err(
        serde_json::json!({"host": "db", "database": "crm"}),
        serde_json::json!({"authenticationType": "BASIC", "basic": {"username": "u"}}),
    );
    assert!(message.contains("basic.password is required"), "{message}");
}

/// A CA certificate unrelated to any test server (ECDSA P-256, signed with SHA-256).
const OTHER_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBrTCCAVOgAwIBAgIUYkeVGhUShje1Rjq49sZKyfiRW8QwCgYIKoZIzj0EAwIw
IzEhMB8GA1UEAwwYU2x1aWNlIHVucmVsYXRlZCB0ZXN0IENBMCAXDTI2MTEyNTIy
MDYyNVoYDzIxMjYxMTAxMjIwNjI1WjAjMSEwHwYDVQQDDBhTbHVpY2UgdW5yZWxh
dGVkIHRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASKmP1E7FAU+phm
YKuK+0zJqNCSwRQIxCmScGveUd6iV0r7va/f1gTNNgosprK5tH5Ajgtt3pXa+V32
BKSCYeQvo2MwYTAdBgNVHQ4EFgQUugwBiBVdnu32sfsRNiJouBQVc4QwHwYDVR0j
BBgwFoAUugwBiBVdnu32sfsRNiJouBQVc4QwDwYDVR0TAQH/BAUwAwEB/zAOBgNV
HQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDSAAwRQIgKISGhd5M1Ni/K2mNZ61v4yBC
0lj+a/jcjl7yyRU1st8CIQDzn7o2kxTH8AyoUgwW9Ir2VdfO1FWhXphJ9hcp6kAR
Tw==
-----END CERTIFICATE-----
";

#[test]
fn tls_settings_are_parsed_and_checked() {
    let config = |props: serde_json::Value| {
        let mut base = serde_json::json!({"host": "db", "database": "crm"});
        for (key, value) in props.as_object().unwrap() {
            base[key] = value.clone();
        }
        ConnectionConfig::from_profile(&profile(base, basic("u", "p")))
    };
    assert_eq!(
        config(serde_json::json!({})).unwrap().ssl_mode,
        SslMode::Prefer
    );
    for (name, mode) in [
        ("disable", SslMode::Disable),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        let parsed = config(serde_json::json!({"sslmode": name})).unwrap();
        assert_eq!((parsed.ssl_mode, parsed.ssl_mode.as_str()), (mode, name));
        assert!(parsed.root_certs.is_empty());
    }
    // A CA makes require check the chain, as in libpq; an empty value means none.
    let with_ca =
        config(serde_json::json!({"sslmode": "require", "sslrootcert": OTHER_CA_PEM})).unwrap();
    assert_eq!(with_ca.ssl_mode, SslMode::VerifyCa);
    assert_eq!(with_ca.root_certs.len(), 1);
    let two = format!("{OTHER_CA_PEM}\n{OTHER_CA_PEM}");
    let full = config(serde_json::json!({"sslmode": "verify-full", "sslrootcert": two})).unwrap();
    assert_eq!(
        (full.ssl_mode, full.root_certs.len()),
        (SslMode::VerifyFull, 2)
    );
    let empty = config(serde_json::json!({"sslmode": "require", "sslrootcert": "  "})).unwrap();
    assert_eq!(empty.ssl_mode, SslMode::Require);
    // The API refuses whitespace in property values, so the base64 DER form is accepted too,
    // several certificates separated by commas.
    let der = base64_der(OTHER_CA_PEM);
    assert!(!der.contains(char::is_whitespace));
    let from_der = config(serde_json::json!({"sslmode": "verify-full",
                                             "sslrootcert": format!("{der},{der},")}))
    .unwrap();
    assert_eq!(from_der.root_certs.len(), 2);
    assert_eq!(from_der.root_certs[0], with_ca.root_certs[0]);
    let bad_der = config(serde_json::json!({"sslrootcert": format!("{der},AAAA")})).unwrap_err();
    assert!(
        bad_der
            .to_string()
            .contains("sslrootcert has an invalid certificate (number 2)"),
        "{bad_der}"
    );
    let hostaddr = config(serde_json::json!({"hostaddr": "127.0.0.1"})).unwrap();
    assert_eq!(hostaddr.hostaddr, Some([127, 0, 0, 1].into()));

    let error = |props| config(props).unwrap_err();
    let path = error(serde_json::json!({"sslrootcert": "/etc/ssl/rds-ca.pem"}));
    assert_eq!(path.kind, ConnectorErrorKind::InvalidConfig);
    assert!(
        path.to_string().contains(
            "profileProperties.sslrootcert must hold CA certificates as PEM text or as base64 \
             DER (comma-separated), not a file name or other text: part 1 is not base64"
        ),
        "{path}"
    );
    let not_a_string = error(serde_json::json!({"sslrootcert": 5}));
    assert!(
        not_a_string
            .to_string()
            .contains("sslrootcert must be a string")
    );
    let no_certificate = error(serde_json::json!({"sslrootcert":
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}));
    assert!(
        no_certificate
            .to_string()
            .contains("sslrootcert holds no CERTIFICATE block"),
        "{no_certificate}"
    );
    // A damaged body fails when the profile is read, not at connection time.
    let damaged = OTHER_CA_PEM.replace("MIIBrTCCAVOg", "MIIBrTCCAVOx");
    let damaged = error(serde_json::json!({"sslrootcert": damaged}));
    assert!(
        damaged
            .to_string()
            .contains("sslrootcert has an invalid certificate (number 1)"),
        "{damaged}"
    );
    let truncated = OTHER_CA_PEM.replace("-----END CERTIFICATE-----", "");
    let truncated = error(serde_json::json!({"sslrootcert": truncated}));
    assert!(
        truncated
            .to_string()
            .contains("sslrootcert has an unreadable"),
        "{truncated}"
    );
}

/// The whitespace-free form of a PEM certificate: its base64 body on one line.
fn base64_der(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

#[test]
fn the_api_accepts_the_base64_form_of_sslrootcert() {
    let request = |sslrootcert: &str| {
        serde_json::json!({
            "connectorProfileName": "pg", "connectorType": "CustomConnector",
            "connectorLabel": "Postgres", "connectionMode": "Public",
            "connectorProfileConfig": {
                "connectorProfileProperties": {"CustomConnector": {"profileProperties": {
                    "host": "db", "database": "crm", "sslmode": "verify-full",
                    "sslrootcert": sslrootcert}}},
                "connectorProfileCredentials": {"CustomConnector": basic("u", "p")}
            }
        })
    };
    let validate = |body: &serde_json::Value| {
        sluice_api_model::validate::validate("CreateConnectorProfileRequest", body)
    };
    validate(&request(&base64_der(OTHER_CA_PEM))).unwrap();
    let pem = validate(&request(OTHER_CA_PEM)).unwrap_err();
    assert!(
        pem.to_string().contains("regular expression pattern"),
        "{pem}"
    );
}

#[test]
fn channel_binding_hashes_the_certificate_with_its_signature_hash() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(OTHER_CA_PEM.as_bytes()).unwrap();
    // `openssl x509 -outform der | sha256sum` of the certificate (signed ecdsa-with-SHA256).
    let expected = "b162e9f079ebad914a0d663ed9882bdb9079a36669ec606016b1f248373ee527";
    let hash = crate::tls::tls_server_end_point(&der).unwrap();
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, expected);
    // Truncated or non-certificate input gives no binding rather than a panic.
    for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
        assert_eq!(
            crate::tls::tls_server_end_point(&der[..cut]),
            None,
            "cut {cut}"
        );
    }
    assert_eq!(
        crate::tls::tls_server_end_point(&[0x30, 0x84, 0xff, 0xff]),
        None
    );
}

#[test]
fn json_arrays_become_postgres_array_literals() {
    let literal = |text: &str| crate::encode::pg_array_literal(text, false);
    assert_eq!(literal("[1,2,null]").as_deref(), Some(r#"{"1","2",NULL}"#));
    assert_eq!(literal(" [ ] ").as_deref(), Some("{}"));
    assert_eq!(
        literal("[[1, 2], [3, 4]]").as_deref(),
        Some(r#"{{"1","2"},{"3","4"}}"#)
    );
    assert_eq!(
        literal(r#"["x","y \"q\"","a\\b","✓ 🦀","NULL",null,"}{,"]"#).as_deref(),
        Some(r#"{"x","y \"q\"","a\\b","✓ 🦀","NULL",NULL,"}{,"}"#)
    );
    // Numbers keep their exact text, beyond what a double holds.
    assert_eq!(
        literal("[123456789012345678901234567890.000000001, -1e3, true]").as_deref(),
        Some(r#"{"123456789012345678901234567890.000000001","-1e3","true"}"#)
    );
    // json[] elements are whole JSON values, nested arrays included.
    assert_eq!(
        crate::encode::pg_array_literal(r#"[{"a": [1, "]"]}, [1], "s", null, 2]"#, true).as_deref(),
        Some(r#"{"{\"a\": [1, \"]\"]}","[1]","\"s\"",NULL,"2"}"#)
    );
    // Anything else is left alone (and refused by the database if it is not an array).
    for text in [
        "{1,2}",
        "",
        "[",
        "[1,",
        "[1,,2]",
        "[1] x",
        "[1 2]",
        r#"["open]"#,
        "[nul]",
        "[01x]",
        "[[1]",
    ] {
        assert_eq!(literal(text), None, "{text:?}");
    }
    let strings: ArrayRef = Arc::new(arrow_array::StringArray::from(vec![
        Some("[1,null]"),
        None,
        Some("{3}"),
    ]));
    let converted = crate::encode::json_arrays_to_literals(&strings, false);
    assert_eq!(
        format_rows(&[RecordBatch::try_from_iter([("a", converted)]).unwrap()]),
        [r#"{"1",NULL}"#, "NULL", "{3}"]
    );
}

#[test]
fn rejected_rows_are_described_as_json() {
    let batch = sample_batch();
    let rows: Vec<serde_json::Value> = (0..batch.num_rows())
        .map(|row| serde_json::Value::Object(crate::encode::row_json(&batch, row)))
        .collect();
    assert_eq!(
        rows[0],
        serde_json::json!({
            "b": true, "i2": i16::MIN, "i4": i32::MAX, "i8": i64::MIN, "f4": 1.5, "f8": -0.0,
            "dec": "-0.01", "text": "", "bin": "AP8B", "date": "1970-01-01",
            "ts": "1970-01-01T00:00:00", "tstz": null, "time": "00:00:00"
        })
    );
    assert_eq!(
        rows[1],
        serde_json::json!({
            "b": null, "i2": 0, "i4": null, "i8": i64::MAX, "f4": "NaN", "f8": "Infinity",
            "dec": "99999999.99", "text": "héllo wörld ✓ 🦀 \u{0}-free", "bin": "",
            "date": "0001-01-01", "ts": "1969-12-31T23:59:59.999999",
            "tstz": "2000-01-01T00:00:00Z", "time": "23:59:59.999999"
        })
    );
    assert_eq!(rows[2]["f8"], serde_json::json!(1e-300));
    assert_eq!(rows[2]["ts"], "2023-11-14T22:13:20.123456");
    assert_eq!(rows[2]["tstz"], "9999-12-31T23:59:59.999999Z");
    // A `real` keeps its short decimal form.
    let batch = RecordBatch::try_from_iter([
        (
            "r",
            Arc::new(arrow_array::Float32Array::from(vec![1.1f32])) as ArrayRef,
        ),
        (
            "u",
            Arc::new(arrow_array::UInt64Array::from(vec![u64::MAX])) as ArrayRef,
        ),
    ])
    .unwrap();
    assert_eq!(
        serde_json::Value::Object(crate::encode::row_json(&batch, 0)),
        serde_json::json!({"r": 1.1, "u": u64::MAX})
    );
}

#[test]
fn table_names() {
    assert_eq!(
        TableName::parse("crm.Accounts", "f").unwrap(),
        TableName {
            schema: "crm".into(),
            table: "Accounts".into()
        }
    );
    let t = TableName::parse("accounts", "f").unwrap();
    assert_eq!(t.to_string(), "public.accounts");
    assert_eq!(
        TableName::parse("a\"b.c", "f").unwrap().quoted(),
        "\"a\"\"b\".\"c\""
    );
    for bad in ["", ".t", "s.", "a.b.c"] {
        let err = TableName::parse(bad, "entityName").unwrap_err();
        assert!(
            err.to_string().starts_with("entityName must be a table"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn flow_settings() {
    let source: model::SourceFlowConfig = serde_json::from_value(serde_json::json!({
        "connectorType": "CustomConnector",
        "sourceConnectorProperties": {"CustomConnector": {"entityName": "public.a",
            "customProperties": {"parallelism": "17"}}}
    }))
    .unwrap();
    let err = SourceConfig::from_flow(&source).unwrap_err();
    assert!(
        err.to_string()
            .contains("parallelism must be a whole number from 1 to 16, not \"17\"")
    );
    let destination = |props: serde_json::Value| -> model::DestinationFlowConfig {
        serde_json::from_value(serde_json::json!({
            "connectorType": "CustomConnector",
            "destinationConnectorProperties": {"CustomConnector": props}
        }))
        .unwrap()
    };
    let err = DestinationConfig::from_flow(&destination(
        serde_json::json!({"entityName": "t", "writeOperationType": "UPSERT"}),
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("idFieldNames is required when writeOperationType is UPSERT")
    );
    let config = DestinationConfig::from_flow(&destination(serde_json::json!({
        "entityName": "t", "writeOperationType": "DELETE", "idFieldNames": ["id"],
        "errorHandlingConfig": {"failOnFirstDestinationError": false}
    })))
    .unwrap();
    assert_eq!(config.mode, WriteMode::Delete);
    assert!(!config.fail_on_first_error);
}

// ---------------------------------------------------------------- against a server

/// A fresh database for one test, dropped when the test ends.
struct TestDb {
    admin: tokio_postgres::Client,
    url: tokio_postgres::Config,
    name: String,
}

impl TestDb {
    async fn create(test: &str) -> Option<Self> {
        let Ok(url) = std::env::var("SLUICE_TEST_POSTGRES_URL") else {
            eprintln!("skipping {test}: SLUICE_TEST_POSTGRES_URL is not set");
            return None;
        };
        let config: tokio_postgres::Config = url.parse().expect("SLUICE_TEST_POSTGRES_URL");
        let (admin, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let name = format!("sluice_test_{test}");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("drop old test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        Some(Self {
            admin,
            url: config,
            name,
        })
    }

    fn profile_with(&self, database: &str, password: Option<&str>) -> Profile {
        let host = match &self.url.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            other => panic!("unsupported host {other:?}"),
        };
        let password = password.map(str::to_owned).unwrap_or_else(|| {
            String::from_utf8(self.url.get_password().unwrap_or_default().to_vec()).unwrap()
        });
        profile(
            serde_json::json!({"host": host, "port": self.url.get_ports()[0].to_string(),
                               "database": database, "sslmode": "disable"}),
            basic(self.url.get_user().unwrap(), &password),
        )
    }

    fn profile(&self) -> Profile {
        self.profile_with(&self.name, None)
    }

    /// The test database's profile with some profile properties replaced.
    fn profile_props(&self, overrides: serde_json::Value) -> Profile {
        let mut profile = self.profile();
        let props = profile
            .properties
            .pointer_mut("/CustomConnector/profileProperties")
            .unwrap();
        for (key, value) in overrides.as_object().unwrap() {
            props[key] = value.clone();
        }
        profile
    }

    async fn client(&self) -> tokio_postgres::Client {
        crate::client::connect(&ConnectionConfig::from_profile(&self.profile()).unwrap())
            .await
            .unwrap()
    }

    async fn drop(self) {
        self.admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .expect("drop test database");
    }
}

fn read_request(profile: &Profile, entity: &str, custom: serde_json::Value) -> ReadRequest {
    ReadRequest {
        flow_name: "f".into(),
        execution_id: "e".into(),
        source: serde_json::from_value(serde_json::json!({
            "connectorType": "CustomConnector", "connectorProfileName": "pg",
            "sourceConnectorProperties": {"CustomConnector": {"entityName": entity, "customProperties": custom}}
        }))
        .unwrap(),
        profile: Some(profile.clone()),
        projection: None,
        filters: Vec::new(),
        window: None,
        batch_rows: 1000,
        stats: Arc::new(ReadStats::default()),
    }
}

fn write_request(profile: &Profile, props: serde_json::Value) -> WriteRequest {
    write_request_with(
        profile,
        props,
        Arc::new(sluice_connector_api::NoErrorLocation),
    )
}

fn write_request_with(
    profile: &Profile,
    props: serde_json::Value,
    rejected: Arc<dyn sluice_connector_api::RejectedRecordSink>,
) -> WriteRequest {
    WriteRequest {
        flow_name: "f".into(),
        execution_id: "e".into(),
        destination: serde_json::from_value(serde_json::json!({
            "connectorType": "CustomConnector", "connectorProfileName": "pg",
            "destinationConnectorProperties": {"CustomConnector": props}
        }))
        .unwrap(),
        profile: Some(profile.clone()),
        schema_version: 1,
        run_started_at: chrono::Utc::now(),
        partition_keys: Vec::new(),
        rejected,
    }
}

async fn read_all(
    request: ReadRequest,
) -> Result<Vec<RecordBatch>, sluice_connector_api::ConnectorError> {
    let mut stream = PostgresConnector.read(request).await?;
    let mut out = Vec::new();
    while let Some(batch) = stream.next().await {
        out.push(batch?);
    }
    Ok(out)
}

async fn text_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

const ALL_TYPES_DDL: &str = "(id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer NOT NULL,
    f4 real, f8 double precision, amount numeric(12,2), big numeric, name text,
    code varchar(8), flag char(3), d date, ts timestamp, tstz timestamptz, t time,
    u uuid, j json, jb jsonb, raw bytea, updated timestamptz, ints integer[], texts text[],
    nums numeric[], grid integer[], jsons jsonb[], stamps timestamptz[], bins bytea[])";

const ALL_TYPES_ROWS: &str = "INSERT INTO src VALUES
    (1, true, -32768, 2147483647, 1.5, 2.25, 1234567890.12, 123456789012345678901234567890.123456789,
     'héllo wörld ✓ 🦀', 'abc', 'x', '2024-02-29', '1999-12-31 23:59:59.999999',
     '2024-01-01 12:00:00+02', '23:59:59.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '{\"k\": [1, 2]}', '{\"k\": \"v\", \"n\": null}', '\\x00ff10', '2024-06-01 00:00:00+00',
     '{1,NULL,-3}', ARRAY['a', 'b \"q\"', NULL, 'NULL', '}{,\\', 'ü ✓', ''],
     '{1.5,123456789012345678901234567890.000000001,-0.01}', '{{1,2},{3,4}}',
     ARRAY['{\"k\": [1, \"]\"]}'::jsonb, '[1, 2]', '\"s\"', '7'],
     ARRAY['2024-01-01 12:00:00.5+02'::timestamptz, NULL], ARRAY['\\x00ff'::bytea, '\\x']),
    (2, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, '2024-06-02 00:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, false, 0, -1, 'NaN', '-Infinity', -0.01, -0, '', '', '', '0001-01-01', '1970-01-01',
     '1970-01-01 00:00:00+00', '00:00', '00000000-0000-0000-0000-000000000000', '[]', '[]', '\\x',
     '2024-06-03 00:00:00+00', '{}', '{}', '{}', '{}', '{}', '{}', '{}')";

#[tokio::test]
async fn postgres_parquet_postgres_round_trip_keeps_every_value() {
    let Some(db) = TestDb::create("round_trip").await else {
        return;
    };
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE src {ALL_TYPES_DDL}; CREATE TABLE dst {ALL_TYPES_DDL};"
        ))
        .await
        .unwrap();
    client.batch_execute(ALL_TYPES_ROWS).await.unwrap();
    // A huge text value travels through as well.
    client
        .batch_execute("INSERT INTO src (id, i4, name) VALUES (4, 4, repeat('ü', 3000000))")
        .await
        .unwrap();
    let profile = db.profile();
    let mut request = read_request(&profile, "public.src", serde_json::json!({}));
    request.batch_rows = 2;
    let batches = read_all(request).await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 4);
    let schema = batches[0].schema();
    assert_eq!(
        schema.field_with_name("amount").unwrap().data_type(),
        &DataType::Decimal128(12, 2)
    );
    assert_eq!(
        schema.field_with_name("big").unwrap().data_type(),
        &DataType::Utf8
    );
    assert!(!schema.field_with_name("i4").unwrap().is_nullable());

    // Through Parquet and back.
    let mut parquet = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut parquet, schema.clone(), None).unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(parquet),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut sink = PostgresConnector
        .open_writer(write_request(
            &profile,
            serde_json::json!({"entityName": "public.dst"}),
        ))
        .await
        .unwrap();
    for batch in reader {
        sink.write(batch.unwrap()).await.unwrap();
    }
    let summary = sink.commit().await.unwrap();
    assert_eq!(summary.records_written, 4);
    assert_eq!(summary.put_failures, 0);

    let dump = |table: &str| format!("SELECT r::text FROM {table} r ORDER BY id");
    let source = text_rows(&client, &dump("src")).await;
    assert_eq!(source.len(), 4);
    assert_eq!(source, text_rows(&client, &dump("dst")).await);
    db.drop().await;
}

#[tokio::test]
async fn arrays_and_other_types_are_read_as_text() {
    let Some(db) = TestDb::create("arrays").await else {
        return;
    };
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE a (id int, tags text[], nums int[], span interval, addr inet);
             INSERT INTO a VALUES (1, ARRAY['x', 'y \"q\"', NULL], '{1,2}', '1 day 2 hours', '10.0.0.1'),
                                  (2, NULL, '{}', NULL, NULL)",
        )
        .await
        .unwrap();
    let batches = read_all(read_request(&db.profile(), "a", serde_json::json!({})))
        .await
        .unwrap();
    let formatted = format_rows(&batches).join("\n");
    assert!(formatted.contains(r#"["x","y \"q\"",null]"#), "{formatted}");
    assert!(formatted.contains("[1,2]"), "{formatted}");
    assert!(formatted.contains("1 day 02:00:00"), "{formatted}");
    assert!(formatted.contains("10.0.0.1"), "{formatted}");
    db.drop().await;
}

#[tokio::test]
async fn metadata_lists_and_describes_tables() {
    let Some(db) = TestDb::create("metadata").await else {
        return;
    };
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA crm; CREATE TABLE crm.src {ALL_TYPES_DDL}; CREATE VIEW public.v AS SELECT 1 AS one"
        ))
        .await
        .unwrap();
    let ctx = EntityContext {
        profile: Some(db.profile()),
        entities_path: None,
    };
    let listing = PostgresConnector.list_entities(&ctx).await.unwrap();
    let names: Vec<_> = listing
        .values()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, vec!["crm.src", "public.v"]);
    let only_crm = EntityContext {
        entities_path: Some("crm".into()),
        ..ctx.clone()
    };
    assert_eq!(
        PostgresConnector
            .list_entities(&only_crm)
            .await
            .unwrap()
            .len(),
        1
    );

    let fields = PostgresConnector
        .describe_entity(&ctx, "crm.src")
        .await
        .unwrap();
    let field = |name: &str| fields.iter().find(|f| f.identifier == name).unwrap();
    assert_eq!(field("id").is_primary_key, Some(true));
    assert_eq!(field("b").is_primary_key, Some(false));
    assert_eq!(
        field("i4")
            .destination_properties
            .as_ref()
            .unwrap()
            .is_nullable,
        Some(false)
    );
    assert_eq!(
        field("amount").description.as_deref(),
        Some("numeric(12,2)")
    );
    assert_eq!(
        field("amount")
            .supported_field_type_details
            .as_ref()
            .unwrap()
            .v1
            .field_type,
        "decimal"
    );
    let incremental = |name: &str| {
        field(name)
            .source_properties
            .as_ref()
            .unwrap()
            .is_timestamp_field_for_incremental_queries
    };
    assert_eq!(incremental("tstz"), Some(true));
    assert_eq!(incremental("d"), Some(true));
    assert_eq!(incremental("name"), Some(false));

    let err = PostgresConnector
        .describe_entity(&ctx, "crm.nope")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::NotFound);
    assert!(
        err.to_string().contains("table crm.nope does not exist"),
        "{err}"
    );
    db.drop().await;
}

#[tokio::test]
async fn bad_credentials_and_missing_things_are_classified() {
    let Some(db) = TestDb::create("auth").await else {
        return;
    };
    let err = PostgresConnector
        .validate_profile(&db.profile_with(&db.name, Some("wrong-password")))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Authentication, "{err}");
    assert!(!err.to_string().contains("wrong-password"));
    PostgresConnector
        .validate_profile(&db.profile())
        .await
        .unwrap();
    let err = PostgresConnector
        .validate_profile(&db.profile_with("no_such_database", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::NotFound, "{err}");

    let err = read_all(read_request(
        &db.profile(),
        "public.missing",
        serde_json::json!({}),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::NotFound);
    assert!(err.to_string().contains("public.missing"), "{err}");
    let err = PostgresConnector
        .open_writer(write_request(
            &db.profile(),
            serde_json::json!({"entityName": "missing", "writeOperationType": "DELETE", "idFieldNames": ["id"]}),
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ConnectorErrorKind::NotFound);
    db.drop().await;
}

#[tokio::test]
async fn parallel_scans_filters_and_windows_read_one_snapshot() {
    let Some(db) = TestDb::create("parallel").await else {
        return;
    };
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE big (id bigint, pad text, at timestamptz);
             INSERT INTO big SELECT g, repeat('x', 200), '2024-01-01'::timestamptz + g * interval '1 minute'
             FROM generate_series(1, 20000) g",
        )
        .await
        .unwrap();
    let profile = db.profile();
    for parallelism in ["1", "4"] {
        let request = read_request(
            &profile,
            "big",
            serde_json::json!({"parallelism": parallelism}),
        );
        let batches = read_all(request).await.unwrap();
        let mut ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let ids = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .unwrap();
                ids.values().to_vec()
            })
            .collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            (1..=20000).collect::<Vec<i64>>(),
            "parallelism {parallelism}"
        );
    }

    let mut request = read_request(&profile, "big", serde_json::json!({}));
    request.projection = Some(vec!["id".into()]);
    request.filters = vec![sluice_connector_api::PushdownFilter {
        field: "id".into(),
        operator: model::Operator::LessThanOrEqualTo,
        values: vec!["100".into()],
        data_type: None,
    }];
    request.window = Some(IncrementalWindow {
        field: "at".into(),
        start: "2024-01-01T00:10:00Z".parse().unwrap(),
        end: "2024-01-01T00:20:00Z".parse().unwrap(),
    });
    let batches = read_all(request).await.unwrap();
    assert_eq!(batches[0].num_columns(), 1);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    // Minutes 10..20 are ids 10..=19.
    assert_eq!(rows, 10);
    db.drop().await;
}

fn id_name_batch(rows: &[(i64, Option<&str>)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(arrow_array::Int64Array::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(arrow_array::StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn upsert_update_delete_and_created_tables() {
    let Some(db) = TestDb::create("modes").await else {
        return;
    };
    let client = db.client().await;
    let profile = db.profile();
    let write = |props: serde_json::Value, batch: RecordBatch| {
        let profile = profile.clone();
        async move {
            let mut sink = PostgresConnector
                .open_writer(write_request(&profile, props))
                .await?;
            sink.write(batch).await?;
            sink.commit().await
        }
    };
    // INSERT creates the missing table from the Arrow schema.
    write(
        serde_json::json!({"entityName": "people"}),
        id_name_batch(&[(1, Some("a")), (2, Some("b"))]),
    )
    .await
    .unwrap();
    let types = text_rows(
        &client,
        "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns
         WHERE table_name = 'people' ORDER BY ordinal_position",
    )
    .await;
    assert_eq!(types, vec!["id bigint NO", "name text YES"]);
    let upsert = serde_json::json!({"entityName": "people", "writeOperationType": "UPSERT", "idFieldNames": ["id"]});
    write(upsert, id_name_batch(&[(2, Some("B")), (3, None)]))
        .await
        .unwrap();
    let update = serde_json::json!({"entityName": "people", "writeOperationType": "UPDATE", "idFieldNames": ["id"]});
    write(update, id_name_batch(&[(1, Some("A")), (9, Some("ghost"))]))
        .await
        .unwrap();
    let delete = serde_json::json!({"entityName": "people", "writeOperationType": "DELETE", "idFieldNames": ["id"]});
    write(delete, id_name_batch(&[(3, None)])).await.unwrap();
    let rows = text_rows(&client, "SELECT t::text FROM people t ORDER BY id").await;
    assert_eq!(rows, vec!["(1,A)", "(2,B)"]);

    // A type mismatch names the column and both types, and writes nothing.
    client
        .batch_execute("CREATE TABLE typed (id bigint, name date)")
        .await
        .unwrap();
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Boolean, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(arrow_array::Int64Array::from(vec![1])),
            Arc::new(arrow_array::BooleanArray::from(vec![true])),
        ],
    )
    .unwrap();
    let err = write(serde_json::json!({"entityName": "typed"}), batch)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::BadData);
    assert!(
        err.to_string().contains("field name has Arrow type Boolean (sent as boolean), which cannot be written to column name of table public.typed of type date"),
        "{err}"
    );
    db.drop().await;
}

/// The rejected records as `(record, code, message)`.
fn rejected_of(
    collected: &sluice_connector_api::CollectRejected,
) -> Vec<(serde_json::Value, Option<String>, String)> {
    collected
        .records()
        .into_iter()
        .map(|r| (serde_json::Value::Object(r.record), r.code, r.message))
        .collect()
}

#[tokio::test]
async fn rejected_rows_fail_the_run_or_are_counted() {
    let Some(db) = TestDb::create("rejects").await else {
        return;
    };
    let client = db.client().await;
    client
        .batch_execute("CREATE TABLE r (id bigint PRIMARY KEY, name varchar(3) NOT NULL)")
        .await
        .unwrap();
    let profile = db.profile();
    let batch = id_name_batch(&[
        (1, Some("ok")),
        (2, Some("too long")),
        (3, None),
        (4, Some("fin")),
    ]);
    let too_long = (
        serde_json::json!({"id": 2, "name": "too long"}),
        Some("22001".to_owned()),
        "value too long for type character varying(3)".to_owned(),
    );
    // Default: the first rejected row fails the run, nothing is written, and that row is
    // handed to the error location before the error is returned.
    let collected = Arc::new(sluice_connector_api::CollectRejected::default());
    let mut sink = PostgresConnector
        .open_writer(write_request_with(
            &profile,
            serde_json::json!({"entityName": "r"}),
            collected.clone(),
        ))
        .await
        .unwrap();
    let err = sink.write(batch.clone()).await.unwrap_err();
    sink.abort().await;
    assert_eq!(err.kind, ConnectorErrorKind::BadData);
    assert!(
        err.to_string().contains("table public.r rejected row 2"),
        "{err}"
    );
    assert!(err.to_string().contains("too long"), "{err}");
    assert!(
        text_rows(&client, "SELECT id::text FROM r")
            .await
            .is_empty()
    );
    assert_eq!(rejected_of(&collected), vec![too_long.clone()]);

    // Without failOnFirstDestinationError, the good rows land and the others are counted and
    // handed over with their SQLSTATE, the database's message and the column when known.
    let collected = Arc::new(sluice_connector_api::CollectRejected::default());
    let mut sink = PostgresConnector
        .open_writer(write_request_with(
            &profile,
            serde_json::json!({"entityName": "r", "errorHandlingConfig": {"failOnFirstDestinationError": false}}),
            collected.clone(),
        ))
        .await
        .unwrap();
    sink.write(batch).await.unwrap();
    // A second batch: a duplicate key among good rows.
    sink.write(id_name_batch(&[(5, Some("new")), (1, Some("dup"))]))
        .await
        .unwrap();
    let summary = sink.commit().await.unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (3, 3));
    // Three rows of two fields: 2-byte count, 4-byte lengths, an 8-byte id and the name.
    assert_eq!(
        summary.bytes_written,
        (2 + 4 + 8 + 4 + 2) + (2 + 4 + 8 + 4 + 3) + (2 + 4 + 8 + 4 + 3)
    );
    assert_eq!(
        text_rows(&client, "SELECT id::text FROM r ORDER BY id").await,
        vec!["1", "4", "5"]
    );
    assert_eq!(
        rejected_of(&collected),
        vec![
            too_long,
            (
                serde_json::json!({"id": 3, "name": null}),
                Some("23502".to_owned()),
                "null value in column \"name\" of relation \"r\" violates not-null constraint \
                 (column name): Failing row contains (3, null)."
                    .to_owned(),
            ),
            (
                serde_json::json!({"id": 1, "name": "dup"}),
                Some("23505".to_owned()),
                "duplicate key value violates unique constraint \"r_pkey\": Key (id)=(1) \
                 already exists."
                    .to_owned(),
            ),
        ]
    );

    // A value Postgres cannot hold is refused before it is sent, naming its column.
    client
        .batch_execute("CREATE TABLE dates (id bigint, d date)")
        .await
        .unwrap();
    let dates = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(arrow_array::Int64Array::from(vec![1, 2])) as ArrayRef,
        ),
        (
            "d",
            Arc::new(arrow_array::Date32Array::from(vec![19_000, i32::MIN])) as ArrayRef,
        ),
    ])
    .unwrap();
    let collected = Arc::new(sluice_connector_api::CollectRejected::default());
    let mut sink = PostgresConnector
        .open_writer(write_request_with(
            &profile,
            serde_json::json!({"entityName": "dates", "errorHandlingConfig": {"failOnFirstDestinationError": false}}),
            collected.clone(),
        ))
        .await
        .unwrap();
    sink.write(dates).await.unwrap();
    let summary = sink.commit().await.unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (1, 1));
    let rejected = rejected_of(&collected);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0["id"], 2);
    assert_eq!(rejected[0].1, None);
    assert_eq!(rejected[0].2, "date is out of range (column d)");
    assert_eq!(
        text_rows(&client, "SELECT d::text FROM dates").await,
        vec!["2022-01-08"]
    );
    db.drop().await;
}

#[tokio::test]
async fn direct_inserts_keep_every_good_row_of_a_batch_with_a_bad_one() {
    use sluice_connector_api::DestinationWriter as _;
    let Some(db) = TestDb::create("direct").await else {
        return;
    };
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE d (id bigint PRIMARY KEY, name varchar(4000) CHECK (name NOT LIKE 'bad%'));
             CREATE TABLE ruled (id bigint, name text);
             CREATE TABLE ruled_log (id bigint);
             CREATE RULE log AS ON INSERT TO ruled DO ALSO INSERT INTO ruled_log VALUES (NEW.id);
             CREATE TABLE always (id bigint GENERATED ALWAYS AS IDENTITY, name text);",
        )
        .await
        .unwrap();
    let connection = ConnectionConfig::from_profile(&db.profile()).unwrap();
    let open = |entity: &str, fail_on_first: bool| {
        let collected = Arc::new(sluice_connector_api::CollectRejected::default());
        let request = write_request_with(
            &db.profile(),
            serde_json::json!({"entityName": entity,
                "errorHandlingConfig": {"failOnFirstDestinationError": fail_on_first}}),
            collected.clone(),
        );
        let config = DestinationConfig::from_flow(&request.destination).unwrap();
        let connection = connection.clone();
        async move {
            let writer = crate::sink::PostgresWriter::open(&connection, config, request.rejected)
                .await
                .unwrap();
            (writer, collected)
        }
    };
    // Unicode names of 4000 characters: the bad batch is sent as more than one COPY chunk.
    let name = |id: i64| format!("ü{id:0>3999}");
    let rows = |ids: std::ops::RangeInclusive<i64>, bad: Option<i64>| {
        let names: Vec<String> = ids
            .clone()
            .map(|id| match bad {
                Some(b) if b == id => format!("bad {id}"),
                _ => name(id),
            })
            .collect();
        let rows: Vec<(i64, Option<&str>)> =
            ids.zip(names.iter().map(|n| Some(n.as_str()))).collect();
        id_name_batch(&rows)
    };
    let (mut writer, collected) = open("d", false).await;
    writer.write(rows(1..=10, None)).await.unwrap();
    assert_eq!(
        writer.direct_plans(),
        1,
        "a plain table with matching types is copied into"
    );
    writer.write(rows(11..=310, Some(170))).await.unwrap();
    writer.write(rows(311..=315, None)).await.unwrap();
    assert_eq!(
        writer.direct_plans(),
        1,
        "a rejected row does not stop direct copies"
    );
    let summary = Box::new(writer).commit().await.unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (314, 1));
    // Every good row once, the bad one not at all.
    let expected_sum: i64 = (1..=315).sum::<i64>() - 170;
    assert_eq!(
        text_rows(
            &client,
            "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(id) FROM d"
        )
        .await,
        vec![format!("314 314 {expected_sum}")]
    );
    assert_eq!(
        text_rows(
            &client,
            "SELECT name::text FROM d WHERE id IN (169, 171) ORDER BY id"
        )
        .await,
        vec![name(169), name(171)]
    );
    let rejected = rejected_of(&collected);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(
        rejected[0].0,
        serde_json::json!({"id": 170, "name": "bad 170"})
    );
    assert_eq!(rejected[0].1.as_deref(), Some("23514"));
    assert!(rejected[0].2.contains("d_name_check"), "{}", rejected[0].2);

    // COPY ignores rules and overrides always-identity columns, so those tables are staged.
    let (mut writer, _) = open("ruled", true).await;
    writer.write(rows(1..=2, None)).await.unwrap();
    assert_eq!(writer.direct_plans(), 0);
    Box::new(writer).commit().await.unwrap();
    assert_eq!(
        text_rows(&client, "SELECT count(*)::text FROM ruled_log").await,
        vec!["2"]
    );
    let (mut writer, collected) = open("always", true).await;
    let err = writer.write(rows(1..=2, None)).await.unwrap_err();
    assert_eq!(writer.direct_plans(), 0);
    Box::new(writer).abort().await;
    assert!(err.to_string().contains("non-DEFAULT"), "{err}");
    assert_eq!(rejected_of(&collected)[0].1.as_deref(), Some("428C9"));
    assert!(
        text_rows(&client, "SELECT id::text FROM always")
            .await
            .is_empty()
    );
    db.drop().await;
}

#[tokio::test]
async fn rejected_rows_of_a_large_batch_are_found_by_bisection() {
    use sluice_connector_api::DestinationWriter as _;
    let Some(db) = TestDb::create("bisect").await else {
        return;
    };
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE b (id bigint PRIMARY KEY, name text CHECK (name NOT LIKE 'bad%'))",
        )
        .await
        .unwrap();
    let connection = ConnectionConfig::from_profile(&db.profile()).unwrap();
    let open = |props: serde_json::Value| {
        let collected = Arc::new(sluice_connector_api::CollectRejected::default());
        let request = write_request_with(&db.profile(), props, collected.clone());
        let config = DestinationConfig::from_flow(&request.destination).unwrap();
        let connection = connection.clone();
        async move {
            let writer = crate::sink::PostgresWriter::open(&connection, config, request.rejected)
                .await
                .unwrap();
            (writer, collected)
        }
    };
    let names = |prefix: &str, ids: std::ops::RangeInclusive<i64>, bad: &[i64]| {
        ids.map(|id| {
            let name = if bad.contains(&id) {
                format!("bad {id}")
            } else {
                format!("{prefix} ✓ {id}")
            };
            (id, name)
        })
        .collect::<Vec<_>>()
    };
    let batch = |rows: &[(i64, String)]| {
        let rows: Vec<(i64, Option<&str>)> =
            rows.iter().map(|(id, n)| (*id, Some(n.as_str()))).collect();
        id_name_batch(&rows)
    };
    let check_rejected = |collected: &sluice_connector_api::CollectRejected, bad: &[i64]| {
        let rejected = rejected_of(collected);
        let ids: Vec<_> = rejected.iter().map(|r| r.0["id"].clone()).collect();
        assert_eq!(
            ids,
            bad.iter()
                .map(|&id| serde_json::json!(id))
                .collect::<Vec<_>>()
        );
        for (record, code, message) in rejected {
            assert_eq!(record["name"], format!("bad {}", record["id"]));
            assert_eq!(code.as_deref(), Some("23514"));
            assert!(message.contains("b_name_check"), "{message}");
        }
    };
    // The bound a search of 3 rows in 5,000 keeps to: two loads per level of each row's path.
    let bound = 3 * 2 * 13;

    // INSERT: the direct copy is refused, then the staged batch, so the batch is bisected.
    let bad = [1, 2718, 5000];
    let rows = names("first", 1..=5000, &bad);
    let (mut writer, collected) = open(serde_json::json!({"entityName": "b",
        "errorHandlingConfig": {"failOnFirstDestinationError": false}}))
    .await;
    writer.write(batch(&rows)).await.unwrap();
    let loads = writer.retry_loads();
    assert!(
        loads > 0 && loads <= bound,
        "{loads} loads for 3 rejected rows of 5,000"
    );
    assert_eq!(
        writer.direct_plans(),
        1,
        "a rejected row does not stop direct copies"
    );
    let summary = Box::new(writer).commit().await.unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (4997, 3));
    // Each row: a 2-byte field count, 4-byte lengths, an 8-byte id and the name.
    let bytes: usize = rows
        .iter()
        .filter(|(id, _)| !bad.contains(id))
        .map(|(_, name)| 2 + 4 + 8 + 4 + name.len())
        .sum();
    assert_eq!(summary.bytes_written, bytes as u64);
    check_rejected(&collected, &bad);
    // Every good row once, with its value; no rejected one.
    let written = client
        .query("SELECT id, name FROM b ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
        .collect::<Vec<_>>();
    let good: Vec<_> = rows
        .iter()
        .filter(|(id, _)| !bad.contains(id))
        .cloned()
        .collect();
    assert_eq!(written, good);

    // UPSERT goes through the merge: the good rows are updated or inserted, the bad ones left.
    let bad = [2, 1234, 4999];
    let rows = names("second", 1..=5000, &bad);
    let (mut writer, collected) = open(serde_json::json!({"entityName": "b",
        "writeOperationType": "UPSERT", "idFieldNames": ["id"],
        "errorHandlingConfig": {"failOnFirstDestinationError": false}}))
    .await;
    writer.write(batch(&rows)).await.unwrap();
    let loads = writer.retry_loads();
    assert!(
        loads > 0 && loads <= bound,
        "{loads} loads for 3 rejected rows of 5,000"
    );
    let summary = Box::new(writer).commit().await.unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (4997, 3));
    check_rejected(&collected, &bad);
    let written = client
        .query("SELECT id, name FROM b ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
        .collect::<Vec<_>>();
    let expected: Vec<_> = (1..=5000)
        .map(|id| {
            let prefix = if bad.contains(&id) { "first" } else { "second" };
            (id, format!("{prefix} ✓ {id}"))
        })
        .collect();
    assert_eq!(written, expected);

    // failOnFirstDestinationError: the run stops at the first rejected row in row order,
    // numbered from the start of the run, after handing it over; nothing is written.
    client.batch_execute("TRUNCATE b").await.unwrap();
    let (mut writer, collected) = open(serde_json::json!({"entityName": "b"})).await;
    writer
        .write(batch(&names("early", 10_001..=10_010, &[])))
        .await
        .unwrap();
    let bad = [10_500, 12_000, 14_000];
    let err = writer
        .write(batch(&names("late", 10_011..=15_010, &bad)))
        .await
        .unwrap_err();
    let loads = writer.retry_loads();
    assert!(loads > 0 && loads <= bound, "{loads} loads");
    Box::new(writer).abort().await;
    assert_eq!(err.kind, ConnectorErrorKind::BadData);
    assert!(
        err.to_string()
            .contains("table public.b rejected row 500: "),
        "{err}"
    );
    check_rejected(&collected, &bad[..1]);
    assert!(
        text_rows(&client, "SELECT id::text FROM b")
            .await
            .is_empty()
    );
    db.drop().await;
}

#[tokio::test]
async fn a_connection_dropped_mid_run_leaves_the_destination_unchanged() {
    let Some(db) = TestDb::create("dropped").await else {
        return;
    };
    let client = db.client().await;
    client
        .batch_execute("CREATE TABLE d (id bigint, name text)")
        .await
        .unwrap();
    let mut sink = PostgresConnector
        .open_writer(write_request(
            &db.profile(),
            serde_json::json!({"entityName": "d"}),
        ))
        .await
        .unwrap();
    sink.write(id_name_batch(&[(1, Some("first"))]))
        .await
        .unwrap();
    db.admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{}' AND pid <> pg_backend_pid() AND application_name = 'sluice'
               AND state LIKE 'idle in transaction%'",
            db.name
        ))
        .await
        .unwrap();
    let err = sink
        .write(id_name_batch(&[(2, Some("second"))]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind,
            ConnectorErrorKind::Unavailable | ConnectorErrorKind::Internal
        ),
        "{err:?}"
    );
    sink.abort().await;
    assert!(
        text_rows(&client, "SELECT id::text FROM d")
            .await
            .is_empty()
    );
    db.drop().await;
}

/// Terminates the backends of this test's database running `query_like`; returns how many.
async fn terminate(db: &TestDb, condition: &str) -> i64 {
    db.admin
        .query_one(
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name = 'sluice'
                   AND {condition}"
            ),
            &[&db.name],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_connection_dropped_while_reading_fails_the_run_and_writes_nothing() {
    let Some(db) = TestDb::create("dropped_read").await else {
        return;
    };
    let client = db.client().await;
    // The view yields rows slowly, so the scan is surely running when it is cut.
    client
        .batch_execute(
            "CREATE TABLE dst (id bigint, name text);
             CREATE VIEW slow AS SELECT g::bigint AS id, repeat('x', 100) AS name
             FROM generate_series(1, 100000) g WHERE pg_sleep(0.0005)::text = ''",
        )
        .await
        .unwrap();
    let profile = db.profile();
    let mut request = read_request(&profile, "slow", serde_json::json!({}));
    request.batch_rows = 50;
    let mut stream = PostgresConnector.read(request).await.unwrap();
    let mut sink = PostgresConnector
        .open_writer(write_request(
            &profile,
            serde_json::json!({"entityName": "dst"}),
        ))
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    sink.write(first).await.unwrap();
    assert_eq!(terminate(&db, "query LIKE 'COPY%'").await, 1);
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(batch) => sink.write(batch).await.unwrap(),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("the read must fail, not end early");
    assert_eq!(error.kind, ConnectorErrorKind::Unavailable, "{error}");
    assert!(
        error.to_string().contains("cannot read table public.slow"),
        "{error}"
    );
    sink.abort().await;
    assert!(
        text_rows(&client, "SELECT id::text FROM dst")
            .await
            .is_empty()
    );
    db.drop().await;
}

#[tokio::test]
async fn a_connection_dropped_while_writing_fails_the_run_and_leaves_the_table_unchanged() {
    let Some(db) = TestDb::create("dropped_write").await else {
        return;
    };
    let client = db.client().await;
    // A trigger holds the merge, so the write is surely in progress when it is cut.
    client
        .batch_execute(
            "CREATE TABLE d (id bigint, name text);
             INSERT INTO d VALUES (0, 'before');
             CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$;
             CREATE TRIGGER hold BEFORE INSERT ON d FOR EACH STATEMENT EXECUTE FUNCTION hold()",
        )
        .await
        .unwrap();
    let mut sink = PostgresConnector
        .open_writer(write_request(
            &db.profile(),
            serde_json::json!({"entityName": "d"}),
        ))
        .await
        .unwrap();
    let rows: Vec<(i64, Option<&str>)> = (1..=10_000).map(|i| (i, Some("row"))).collect();
    let cut = async {
        for _ in 0..1500 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let killed = terminate(&db, "state = 'active' AND wait_event = 'PgSleep'").await;
            if killed > 0 {
                return killed;
            }
        }
        0
    };
    let (result, killed) = tokio::join!(sink.write(id_name_batch(&rows)), cut);
    assert_eq!(killed, 1);
    let error = result.unwrap_err();
    assert_eq!(error.kind, ConnectorErrorKind::Unavailable, "{error}");
    assert!(
        error.to_string().contains("cannot write to table public.d"),
        "{error}"
    );
    sink.abort().await;
    assert_eq!(
        text_rows(&client, "SELECT d::text FROM d").await,
        vec!["(0,before)"]
    );
    db.drop().await;
}

#[tokio::test]
async fn a_server_without_tls_is_refused_by_require_and_used_plain_by_prefer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that declines the TLS request, as one with ssl = off does, and reports what
    // the client sent next.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut next_messages = Vec::new();
        for _ in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 8];
            socket.read_exact(&mut request).await.unwrap();
            // SSLRequest: length 8, code 80877103.
            assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47]);
            socket.write_all(b"N").await.unwrap();
            // Either nothing (the client gave up) or a plain StartupMessage: a length, then
            // protocol 3.0.
            let mut next = [0u8; 8];
            next_messages.push(
                socket
                    .read_exact(&mut next)
                    .await
                    .ok()
                    .map(|_| next[4..8].to_vec()),
            );
        }
        next_messages
    });
    let attempt = |sslmode: &str| {
        let profile = profile(
            serde_json::json!({"host": "127.0.0.1", "port": port.to_string(), "database": "d",
                               "sslmode": sslmode}),
            basic("u", "secret"),
        );
        async move {
            PostgresConnector
                .validate_profile(&profile)
                .await
                .unwrap_err()
        }
    };
    let err = attempt("require").await;
    assert_eq!(err.kind, ConnectorErrorKind::Authentication, "{err}");
    let message = err.to_string();
    assert!(message.contains("server does not support TLS"), "{message}");
    assert!(
        message.contains("sslmode require needs a server that accepts TLS"),
        "{message}"
    );
    assert!(!message.contains("secret"));
    // prefer goes on without TLS; this server then hangs up, which is no TLS error.
    let err = attempt("prefer").await;
    assert_eq!(err.kind, ConnectorErrorKind::Unavailable, "{err}");
    assert_eq!(server.await.unwrap(), vec![None, Some(vec![0, 3, 0, 0])]);
}

/// The PEM text of the test server's CA (`SLUICE_TEST_POSTGRES_CA`, a file path).
fn test_ca() -> Option<String> {
    let Ok(path) = std::env::var("SLUICE_TEST_POSTGRES_CA") else {
        eprintln!("skipping the TLS server tests: SLUICE_TEST_POSTGRES_CA is not set");
        return None;
    };
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// Whether a connection with `profile` uses TLS, as the server sees it.
async fn uses_tls(profile: &Profile) -> Result<bool, sluice_connector_api::ConnectorError> {
    let client = crate::client::connect(&ConnectionConfig::from_profile(profile)?).await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

#[tokio::test]
async fn tls_modes_encrypt_and_verify_like_libpq() {
    let Some(db) = TestDb::create("tls").await else {
        return;
    };
    let Some(ca) = test_ca() else {
        db.drop().await;
        return;
    };
    let with = |props: serde_json::Value| db.profile_props(props);
    let wrong_host = serde_json::json!({"host": "wrong.example", "hostaddr": "127.0.0.1"});
    let merged = |a: &serde_json::Value, b: serde_json::Value| {
        let mut out = a.clone();
        for (key, value) in b.as_object().unwrap() {
            out[key] = value.clone();
        }
        out
    };

    // Connections that work, and whether they are encrypted.
    for (props, encrypted) in [
        (serde_json::json!({"sslmode": "disable"}), false),
        (serde_json::json!({"sslmode": "prefer"}), true),
        (serde_json::json!({"sslmode": "require"}), true),
        (
            serde_json::json!({"sslmode": "require", "sslrootcert": ca}),
            true,
        ),
        (
            serde_json::json!({"sslmode": "verify-ca", "sslrootcert": ca}),
            true,
        ),
        (
            serde_json::json!({"sslmode": "verify-full", "sslrootcert": ca}),
            true,
        ),
        (
            serde_json::json!({"sslmode": "verify-full", "sslrootcert": ca, "host": "localhost"}),
            true,
        ),
        // The whitespace-free form the API accepts.
        (
            serde_json::json!({"sslmode": "verify-full", "sslrootcert": base64_der(&ca)}),
            true,
        ),
        // verify-ca checks the chain only, so a name the certificate lacks is fine.
        (
            merged(
                &wrong_host,
                serde_json::json!({"sslmode": "verify-ca", "sslrootcert": ca}),
            ),
            true,
        ),
    ] {
        let profile = with(props.clone());
        // SCRAM over TLS binds to the certificate, so this also checks the channel binding.
        PostgresConnector
            .validate_profile(&profile)
            .await
            .unwrap_or_else(|e| panic!("{props}: {e}"));
        assert_eq!(uses_tls(&profile).await.unwrap(), encrypted, "{props}");
    }

    // Refusals are authentication errors that say what to fix.
    let refused = |props: serde_json::Value| {
        let profile = with(props);
        async move {
            PostgresConnector
                .validate_profile(&profile)
                .await
                .unwrap_err()
        }
    };
    let err = refused(merged(
        &wrong_host,
        serde_json::json!({"sslmode": "verify-full", "sslrootcert": ca}),
    ))
    .await;
    assert_eq!(err.kind, ConnectorErrorKind::Authentication, "{err}");
    assert!(
        err.to_string()
            .contains("the server certificate is not valid for host wrong.example"),
        "{err}"
    );
    // Without sslrootcert the system CAs are used, and they do not know the test CA.
    for props in [
        serde_json::json!({"sslmode": "verify-full"}),
        serde_json::json!({"sslmode": "verify-ca", "sslrootcert": OTHER_CA_PEM}),
        serde_json::json!({"sslmode": "require", "sslrootcert": OTHER_CA_PEM}),
    ] {
        let err = refused(props.clone()).await;
        assert_eq!(
            err.kind,
            ConnectorErrorKind::Authentication,
            "{props}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(
                "TLS handshake refused: the server certificate is not signed by a \
                              trusted CA"
            ),
            "{message}"
        );
        assert!(
            message.contains("profileProperties.sslrootcert"),
            "{message}"
        );
    }
    // A wrong password over TLS is still an authentication error.
    let mut bad_password = with(serde_json::json!({"sslmode": "verify-full", "sslrootcert": ca}));
    bad_password.credentials = Sensitive::new(serde_json::json!({"CustomConnector":
        basic(db.url.get_user().unwrap(), "wrong-password")}));
    let err = PostgresConnector
        .validate_profile(&bad_password)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Authentication, "{err}");
    assert!(!err.to_string().contains("wrong-password"));

    // Reads and writes run over a verified connection too.
    let profile = with(serde_json::json!({"sslmode": "verify-full", "sslrootcert": ca}));
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE src AS SELECT g::bigint AS id, repeat('ü', g) AS name
             FROM generate_series(1, 3000) g",
        )
        .await
        .unwrap();
    let batches = read_all(read_request(
        &profile,
        "src",
        serde_json::json!({"parallelism": "2"}),
    ))
    .await
    .unwrap();
    let mut sink = PostgresConnector
        .open_writer(write_request(
            &profile,
            serde_json::json!({"entityName": "dst"}),
        ))
        .await
        .unwrap();
    for batch in batches {
        sink.write(batch).await.unwrap();
    }
    assert_eq!(sink.commit().await.unwrap().records_written, 3000);
    let client = db.client().await;
    let compare = "SELECT count(*)::text FROM src FULL JOIN dst USING (id)
                   WHERE src.name IS DISTINCT FROM dst.name";
    assert_eq!(text_rows(&client, compare).await, vec!["0"]);
    db.drop().await;
}
