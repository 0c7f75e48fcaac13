//! Object-key layout of the destination.
//!
//! ```text
//! <bucketPrefix>/<flowName>/[schemaVersion_<n>/][yyyy/MM/dd/HH/mm/][<executionId>/][k1=v1/…/]<file>
//! ```
//!
//! - Without `prefixConfig`: `<bucketPrefix>/<flowName>/<executionId>/<file>`.
//! - `pathPrefixHierarchy` selects the `schemaVersion_<n>` and `<executionId>` folders. When
//!   `prefixConfig` is given without it, the execution-id folder is kept, as AppFlow does by
//!   default. The order of the folders is fixed, whatever the order of the list.
//! - `prefixType` `PATH` puts the run's start time (UTC) into folders, down to `prefixFormat`
//!   (`YEAR` → `2024`, … `MINUTE` → `2024/03/05/14/30`); `FILENAME` puts it at the front of
//!   the file name instead (`2024-03-05-14-30-…`); `PATH_AND_FILENAME` does both. A
//!   `prefixFormat` without a `prefixType` means `PATH`; a `prefixType` without a
//!   `prefixFormat` adds no date.
//! - Partition folders are `key=value`, in the order of the partition keys; a null value is
//!   `key=null`. Keys and values are percent-encoded for `/`, `\`, `%`, `=` and other
//!   characters that are unsafe in object keys or file names; letters (any script), digits,
//!   spaces and common punctuation are kept.
//! - The file name is `<flowName>-<runStartEpochMs>-<seq>.<ext>`: `seq` counts the files of one
//!   partition from `00000`, and the extension is `csv`, `jsonl` or `parquet`. AppFlow's own
//!   names are opaque; these sort in write order and say what they contain.

use chrono::{DateTime, Datelike, Timelike, Utc};
use sluice_api_model as model;

/// Characters percent-encoded in key segments built from data or names.
const UNSAFE: &[char] = &[
    '/', '\\', '%', '=', '#', '?', '*', ':', '"', '<', '>', '|', '^', '`', '{', '}', '[', ']', '~',
];

/// Percent-encodes one key segment (see the module documentation). Segments that would read
/// as `.` or `..` are encoded too, since they mean "this folder" and "the parent" to file systems
/// and are rejected by object stores.
pub(crate) fn encode_segment(raw: &str) -> String {
    if raw == "." || raw == ".." {
        return raw.replace('.', "%2E");
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_control() || UNSAFE.contains(&c) {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One partition folder path from `(key, value)` pairs, e.g. `country=FR/city=null`.
pub(crate) fn partition_path(pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(&encode_segment(key));
        out.push('=');
        match value {
            Some(value) => out.push_str(&encode_segment(value)),
            None => out.push_str("null"),
        }
    }
    out
}

/// How date and time parts are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateParts {
    depth: usize,
    in_path: bool,
    in_file_name: bool,
}

/// The resolved layout of one run's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyLayout {
    /// Everything before the partition folders, without a trailing slash (may be empty).
    base: String,
    /// File name up to the sequence number.
    stem: String,
    extension: &'static str,
}

/// What the layout depends on.
pub(crate) struct LayoutInput<'a> {
    pub bucket_prefix: &'a str,
    pub flow_name: &'a str,
    pub execution_id: &'a str,
    pub schema_version: i64,
    pub run_started_at: DateTime<Utc>,
    pub prefix_config: Option<&'a model::PrefixConfig>,
    pub extension: &'static str,
}

impl KeyLayout {
    pub(crate) fn new(input: &LayoutInput<'_>) -> Self {
        let (schema_folder, execution_folder, dates) = match input.prefix_config {
            None => (false, true, None),
            Some(config) => {
                let hierarchy = config.path_prefix_hierarchy.as_deref();
                let has = |p: model::PathPrefix| hierarchy.is_none_or(|h| h.contains(&p));
                let schema =
                    hierarchy.is_some_and(|h| h.contains(&model::PathPrefix::SchemaVersion));
                let dates = config.prefix_format.map(|format| {
                    let kind = config.prefix_type.unwrap_or(model::PrefixType::Path);
                    DateParts {
                        depth: depth(format),
                        in_path: matches!(
                            kind,
                            model::PrefixType::Path | model::PrefixType::PathAndFilename
                        ),
                        in_file_name: matches!(
                            kind,
                            model::PrefixType::Filename | model::PrefixType::PathAndFilename
                        ),
                    }
                });
                (schema, has(model::PathPrefix::ExecutionId), dates)
            }
        };
        let time = input.run_started_at;
        let parts = [
            format!("{:04}", time.year()),
            format!("{:02}", time.month()),
            format!("{:02}", time.day()),
            format!("{:02}", time.hour()),
            format!("{:02}", time.minute()),
        ];

        let mut segments: Vec<String> = input
            .bucket_prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        segments.push(encode_segment(input.flow_name));
        if schema_folder {
            segments.push(format!("schemaVersion_{}", input.schema_version));
        }
        if let Some(dates) = dates.filter(|d| d.in_path) {
            segments.extend(parts[..dates.depth].iter().cloned());
        }
        if execution_folder {
            segments.push(encode_segment(input.execution_id));
        }

        let mut stem = String::new();
        if let Some(dates) = dates.filter(|d| d.in_file_name) {
            stem.push_str(&parts[..dates.depth].join("-"));
            stem.push('-');
        }
        stem.push_str(&encode_segment(input.flow_name));
        stem.push_str(&format!("-{}", time.timestamp_millis()));

        Self {
            base: segments.join("/"),
            stem,
            extension: input.extension,
        }
    }

    /// The key of file number `seq` of the partition folder `partition` (empty for none).
    pub(crate) fn key(&self, partition: &str, seq: u32) -> String {
        let mut key =
            String::with_capacity(self.base.len() + partition.len() + self.stem.len() + 16);
        for part in [self.base.as_str(), partition] {
            if !part.is_empty() {
                key.push_str(part);
                key.push('/');
            }
        }
        key.push_str(&format!("{}-{seq:05}.{}", self.stem, self.extension));
        key
    }
}

fn depth(format: model::PrefixFormat) -> usize {
    match format {
        model::PrefixFormat::Year => 1,
        model::PrefixFormat::Month => 2,
        model::PrefixFormat::Day => 3,
        model::PrefixFormat::Hour => 4,
        model::PrefixFormat::Minute => 5,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn input<'a>(prefix_config: Option<&'a model::PrefixConfig>) -> LayoutInput<'a> {
        LayoutInput {
            bucket_prefix: "out/data",
            flow_name: "my-flow",
            execution_id: "exec-1",
            schema_version: 3,
            run_started_at: Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 59).unwrap(),
            prefix_config,
            extension: "csv",
        }
    }

    const MS: i64 = 1_709_649_059_000;

    fn config(
        prefix_type: Option<model::PrefixType>,
        prefix_format: Option<model::PrefixFormat>,
        hierarchy: Option<Vec<model::PathPrefix>>,
    ) -> model::PrefixConfig {
        model::PrefixConfig {
            prefix_type,
            prefix_format,
            path_prefix_hierarchy: hierarchy,
        }
    }

    #[test]
    fn default_layout_has_the_execution_folder() {
        let layout = KeyLayout::new(&input(None));
        assert_eq!(
            layout.key("", 0),
            format!("out/data/my-flow/exec-1/my-flow-{MS}-00000.csv")
        );
        assert_eq!(
            layout.key("k=v", 12),
            format!("out/data/my-flow/exec-1/k=v/my-flow-{MS}-00012.csv")
        );
    }

    #[test]
    fn empty_prefix_and_stray_slashes() {
        let mut i = input(None);
        i.bucket_prefix = "";
        assert_eq!(
            KeyLayout::new(&i).key("", 1),
            format!("my-flow/exec-1/my-flow-{MS}-00001.csv")
        );
        i.bucket_prefix = "/a//b/";
        assert!(KeyLayout::new(&i).key("", 1).starts_with("a/b/my-flow/"));
    }

    #[test]
    fn path_prefix_at_every_depth() {
        use model::PrefixFormat::*;
        let expected = [
            (Year, "2024"),
            (Month, "2024/03"),
            (Day, "2024/03/05"),
            (Hour, "2024/03/05/14"),
            (Minute, "2024/03/05/14/30"),
        ];
        for (format, dates) in expected {
            let c = config(Some(model::PrefixType::Path), Some(format), None);
            let key = KeyLayout::new(&input(Some(&c))).key("", 0);
            assert_eq!(
                key,
                format!("out/data/my-flow/{dates}/exec-1/my-flow-{MS}-00000.csv")
            );
        }
    }

    #[test]
    fn filename_and_path_and_filename() {
        let c = config(
            Some(model::PrefixType::Filename),
            Some(model::PrefixFormat::Hour),
            None,
        );
        assert_eq!(
            KeyLayout::new(&input(Some(&c))).key("", 0),
            format!("out/data/my-flow/exec-1/2024-03-05-14-my-flow-{MS}-00000.csv")
        );
        let c = config(
            Some(model::PrefixType::PathAndFilename),
            Some(model::PrefixFormat::Minute),
            None,
        );
        assert_eq!(
            KeyLayout::new(&input(Some(&c))).key("", 0),
            format!(
                "out/data/my-flow/2024/03/05/14/30/exec-1/2024-03-05-14-30-my-flow-{MS}-00000.csv"
            )
        );
    }

    #[test]
    fn hierarchy_selects_schema_and_execution_folders_in_fixed_order() {
        use model::PathPrefix::*;
        let both = config(
            Some(model::PrefixType::Path),
            Some(model::PrefixFormat::Day),
            Some(vec![ExecutionId, SchemaVersion]),
        );
        assert_eq!(
            KeyLayout::new(&input(Some(&both))).key("a=1", 0),
            format!(
                "out/data/my-flow/schemaVersion_3/2024/03/05/exec-1/a=1/my-flow-{MS}-00000.csv"
            )
        );
        let schema_only = config(None, None, Some(vec![SchemaVersion]));
        assert_eq!(
            KeyLayout::new(&input(Some(&schema_only))).key("", 0),
            format!("out/data/my-flow/schemaVersion_3/my-flow-{MS}-00000.csv")
        );
        let neither = config(None, None, Some(vec![]));
        assert_eq!(
            KeyLayout::new(&input(Some(&neither))).key("", 0),
            format!("out/data/my-flow/my-flow-{MS}-00000.csv")
        );
    }

    #[test]
    fn format_without_type_means_path_and_type_without_format_adds_nothing() {
        let c = config(None, Some(model::PrefixFormat::Year), None);
        assert!(
            KeyLayout::new(&input(Some(&c)))
                .key("", 0)
                .starts_with("out/data/my-flow/2024/exec-1/")
        );
        let c = config(Some(model::PrefixType::Path), None, None);
        assert_eq!(
            KeyLayout::new(&input(Some(&c))).key("", 0),
            format!("out/data/my-flow/exec-1/my-flow-{MS}-00000.csv")
        );
    }

    #[test]
    fn partition_values_are_encoded() {
        assert_eq!(
            partition_path(&[("country", Some("FR")), ("city", None)]),
            "country=FR/city=null"
        );
        assert_eq!(
            partition_path(&[("a/b", Some("x/y=z%")), ("Account Rating", Some("Warm"))]),
            "a%2Fb=x%2Fy%3Dz%25/Account Rating=Warm"
        );
        assert_eq!(partition_path(&[("k", Some(""))]), "k=");
        assert_eq!(partition_path(&[("k", Some("日本 ü"))]), "k=日本 ü");
        assert_eq!(
            partition_path(&[("k", Some("line\nbreak\u{7f}"))]),
            "k=line%0Abreak%7F"
        );
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("a..b"), "a..b");
    }

    #[test]
    fn execution_ids_with_slashes_stay_one_folder() {
        let mut i = input(None);
        i.execution_id = "../x/y";
        assert_eq!(
            KeyLayout::new(&i).key("", 0),
            format!("out/data/my-flow/..%2Fx%2Fy/my-flow-{MS}-00000.csv")
        );
    }
}
