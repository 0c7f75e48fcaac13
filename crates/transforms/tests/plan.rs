//! The public API of `TaskPlan`: compilation errors, push-down hints, and applying plans to
//! batches with Arrow types that JSON test cases cannot express.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float64Array, Int64Array,
    LargeStringArray, RecordBatch, StringArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, types::Int32Type,
};
use arrow_schema::{DataType, Field, Schema};
use serde_json::{Value, json};
use sluice_api_model::{ConnectorType, Operator, Task};
use sluice_connector_api::PushdownFilter;
use sluice_transforms::{PlanError, TaskPlan, TransformError};

fn tasks(value: Value) -> Vec<Task> {
    serde_json::from_value(value).expect("valid task JSON")
}

fn compile(value: Value) -> Result<TaskPlan, PlanError> {
    TaskPlan::compile(&tasks(value), ConnectorType::S3)
}

fn compile_error(value: Value) -> String {
    compile(value)
        .expect_err("compilation should fail")
        .to_string()
}

fn projection(fields: &[&str]) -> Value {
    json!({"sourceFields": fields, "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter"})
}

fn map(source: &str, destination: &str, destination_type: &str) -> Value {
    json!({"sourceFields": [source], "connectorOperator": {"S3": "NO_OP"}, "destinationField": destination,
           "taskType": "Map", "taskProperties": {"DESTINATION_DATA_TYPE": destination_type}})
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
}

fn text(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn strings(array: &ArrayRef) -> Vec<Option<&str>> {
    array.as_string::<i32>().iter().collect()
}

// ---------------------------------------------------------------------------------------------
// compile

#[test]
fn tasks_need_a_projection_or_map_all() {
    assert!(matches!(compile(json!([])), Err(PlanError::NoProjection)));
    let error = compile_error(json!([map("a", "a", "string")]));
    assert!(
        error.contains("PROJECTION") && error.contains("Map_all"),
        "{error}"
    );
}

#[test]
fn projection_is_the_ordered_union_of_projection_tasks() {
    let plan = compile(json!([projection(&["b", "a"]), projection(&["a", "c"])])).unwrap();
    assert_eq!(
        plan.projection(),
        Some(vec!["b".into(), "a".into(), "c".into()])
    );
    let map_all =
        json!([{"sourceFields": [], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map_all"}]);
    assert_eq!(compile(map_all).unwrap().projection(), None);
}

#[test]
fn empty_projection_is_rejected() {
    let error = compile_error(json!([projection(&[""])]));
    assert_eq!(
        error,
        "tasks[0] (Filter): sourceFields must contain at least 1 field, found 0"
    );
}

#[test]
fn operators_must_match_the_task_type() {
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "MASK_ALL"}, "taskType": "Filter"}
    ]));
    assert_eq!(
        error,
        "tasks[1] (Filter): connectorOperator MASK_ALL is not valid for this task type"
    );
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "ADDITION"}, "destinationField": "b", "taskType": "Map"}
    ]));
    assert!(
        error.starts_with("tasks[1] (Map): connectorOperator ADDITION"),
        "{error}"
    );
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "taskType": "Validate"}
    ]));
    assert_eq!(
        error,
        "tasks[1] (Validate): connectorOperator is required for this task type"
    );
}

#[test]
fn operator_key_must_be_the_source_connector() {
    let tasks = tasks(
        json!([{"sourceFields": ["a"], "connectorOperator": {"Salesforce": "PROJECTION"}, "taskType": "Filter"}]),
    );
    let error = TaskPlan::compile(&tasks, ConnectorType::S3)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "tasks[0] (Filter): connectorOperator.Salesforce does not match the source connector S3"
    );
    assert!(TaskPlan::compile(&tasks, ConnectorType::Salesforce).is_ok());
    let both = json!([{"sourceFields": ["a"], "connectorOperator": {"S3": "PROJECTION", "Salesforce": "PROJECTION"}, "taskType": "Filter"}]);
    assert!(compile_error(both).contains("exactly one member, found 2"));
}

#[test]
fn comparison_filters_need_operands() {
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "EQUAL_TO"}, "taskType": "Filter", "taskProperties": {"DATA_TYPE": "string"}}
    ]));
    assert_eq!(error, "tasks[1] (Filter): taskProperties.VALUE is required");
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "BETWEEN"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "datetime", "LOWER_BOUND": "1"}}
    ]));
    assert_eq!(
        error,
        "tasks[1] (Filter): taskProperties.UPPER_BOUND is required"
    );
}

#[test]
fn comparison_filters_take_exactly_one_field() {
    let error = compile_error(json!([
        projection(&["a", "b"]),
        {"sourceFields": ["a", "b"], "connectorOperator": {"S3": "EQUAL_TO"}, "taskType": "Filter", "taskProperties": {"VALUE": "x"}}
    ]));
    assert_eq!(
        error,
        "tasks[1] (Filter): sourceFields must contain exactly 1 field, found 2"
    );
}

#[test]
fn operands_must_parse_as_the_data_type() {
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "GREATER_THAN"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "double", "VALUES": "1,abc"}}
    ]));
    assert_eq!(
        error,
        "tasks[1] (Filter): taskProperties.VALUES \"abc\" is invalid: not a number (DATA_TYPE double)"
    );
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "LESS_THAN"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "datetime", "VALUE": "last week"}}
    ]));
    assert!(
        error.contains("taskProperties.VALUE \"last week\" is invalid"),
        "{error}"
    );
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "EQUAL_TO"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "boolean", "VALUE": "yes"}}
    ]));
    assert!(error.contains("not true or false"), "{error}");
}

#[test]
fn fields_read_by_tasks_must_be_projected() {
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["b"], "connectorOperator": {"S3": "EQUAL_TO"}, "taskType": "Filter", "taskProperties": {"VALUE": "x"}}
    ]));
    assert_eq!(
        error,
        "tasks[1] (Filter): source field `b` is not in the projection; add it to the sourceFields of the PROJECTION task"
    );
    // Intermediate fields written by Merge/Arithmetic are not source fields.
    let plan = compile(json!([
        projection(&["a", "b"]),
        map("a,b", "sum", "double"),
        {"sourceFields": ["a", "b"], "connectorOperator": {"S3": "ADDITION"}, "destinationField": "a,b",
         "taskType": "Arithmetic", "taskProperties": {"MATH_OPERATION_FIELDS_ORDER": "a,b"}}
    ]));
    assert!(plan.is_ok());
}

#[test]
fn two_tasks_cannot_write_one_destination() {
    let error = compile_error(json!([
        projection(&["a", "b"]),
        map("a", "x", "string"),
        map("b", "x", "string")
    ]));
    assert_eq!(
        error,
        "tasks[2] (Map): destinationField `x` is already written by tasks[1]"
    );
}

#[test]
fn only_one_map_all() {
    let map_all =
        json!({"sourceFields": [], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map_all"});
    let error = compile_error(json!([map_all.clone(), map_all]));
    assert_eq!(
        error,
        "tasks[1] (Map_all): only one Map_all task is allowed, tasks[0] is one already"
    );
}

#[test]
fn malformed_json_properties_name_the_property() {
    let error = compile_error(json!([
        {"sourceFields": [], "taskType": "Map_all", "taskProperties": {"EXCLUDE_SOURCE_FIELDS_LIST": "Phone,Fax"}}
    ]));
    assert!(error.starts_with("tasks[0] (Map_all): taskProperties.EXCLUDE_SOURCE_FIELDS_LIST \"Phone,Fax\" is invalid: must be a JSON array of strings"), "{error}");
    let error = compile_error(json!([
        projection(&["a"]), map("a", "a", "string"),
        {"sourceFields": [], "taskType": "Partition", "taskProperties": {"ORDERED_PARTITION_KEYS_LIST": "[1]"}}
    ]));
    assert!(error.contains("ORDERED_PARTITION_KEYS_LIST"), "{error}");
}

#[test]
fn mask_properties_are_checked() {
    let mask = |operator: &str, properties: Value| json!([projection(&["a"]), {"sourceFields": ["a"], "connectorOperator": {"S3": operator}, "taskType": "Mask", "taskProperties": properties}]);
    assert_eq!(
        compile_error(mask("MASK_FIRST_N", json!({}))),
        "tasks[1] (Mask): taskProperties.MASK_LENGTH is required"
    );
    assert_eq!(
        compile_error(mask("MASK_LAST_N", json!({"MASK_LENGTH": "-2"}))),
        "tasks[1] (Mask): taskProperties.MASK_LENGTH \"-2\" is invalid: must be a non-negative integer"
    );
    assert!(
        compile_error(mask("MASK_ALL", json!({"MASK_VALUE": "**"})))
            .contains("exactly one character")
    );
    // MASK_LENGTH is ignored by MASK_ALL, and a single non-ASCII mask character is fine.
    assert!(
        compile(mask(
            "MASK_ALL",
            json!({"MASK_LENGTH": "x", "MASK_VALUE": "█"})
        ))
        .is_ok()
    );
}

#[test]
fn truncate_needs_a_length() {
    let truncate = |properties: Value| json!([projection(&["a"]), {"sourceFields": ["a"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Truncate", "taskProperties": properties}]);
    assert_eq!(
        compile_error(truncate(json!({}))),
        "tasks[1] (Truncate): taskProperties.TRUNCATE_LENGTH is required"
    );
    assert!(
        compile_error(truncate(json!({"TRUNCATE_LENGTH": "ten"}))).contains("non-negative integer")
    );
    assert!(
        compile_error(truncate(
            json!({"TRUNCATE_LENGTH": "99999999999999999999999"})
        ))
        .contains("non-negative integer")
    );
}

#[test]
fn arithmetic_operand_order_is_checked() {
    let arithmetic = |fields: Value, properties: Value| json!([projection(&["a", "b"]), {"sourceFields": fields, "connectorOperator": {"S3": "SUBTRACTION"}, "taskType": "Arithmetic", "taskProperties": properties}]);
    assert!(
        compile_error(arithmetic(
            json!(["a", "b"]),
            json!({"MATH_OPERATION_FIELDS_ORDER": "a,c"})
        ))
        .contains("`c` is not one of sourceFields")
    );
    assert!(
        compile_error(arithmetic(
            json!(["a", "b"]),
            json!({"MATH_OPERATION_FIELDS_ORDER": "a"})
        ))
        .contains("exactly two fields")
    );
    assert!(
        compile_error(arithmetic(json!(["a"]), json!({}))).contains("exactly 2 fields, found 1")
    );
}

#[test]
fn merge_placeholders_must_name_source_fields() {
    let error = compile_error(json!([
        projection(&["a", "b"]),
        {"sourceFields": ["a", "b"], "taskType": "Merge", "taskProperties": {"CONCAT_FORMAT": "{0}-{2}"}}
    ]));
    assert!(
        error.contains("CONCAT_FORMAT") && error.contains("{2}"),
        "{error}"
    );
}

#[test]
fn validation_action_is_checked() {
    let error = compile_error(json!([
        projection(&["a"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "VALIDATE_NON_NULL"}, "taskType": "Validate",
         "taskProperties": {"VALIDATION_ACTION": "Ignore"}}
    ]));
    assert!(
        error.contains("expected DropRecord, DropDataset or TerminateFlow"),
        "{error}"
    );
}

#[test]
fn partition_keys_must_be_output_fields() {
    let error = compile_error(json!([
        projection(&["a"]), map("a", "b", "string"),
        {"sourceFields": ["a"], "taskType": "Partition"}
    ]));
    assert_eq!(
        error,
        "tasks[2] (Partition): partition key `a` is not a destination field of the flow"
    );
    let excluded = json!([
        {"sourceFields": [], "taskType": "Map_all", "taskProperties": {"EXCLUDE_SOURCE_FIELDS_LIST": "[\"day\"]"}},
        {"sourceFields": ["day"], "taskType": "Partition"}
    ]);
    assert!(compile_error(excluded).contains("partition key `day`"));
    let plan = compile(json!([
        projection(&["a"]), map("a", "b", "string"),
        {"sourceFields": [], "taskType": "Partition", "taskProperties": {"ORDERED_PARTITION_KEYS_LIST": "[\"b\",\"b\"]"}}
    ]))
    .unwrap();
    assert_eq!(plan.partition_keys(), ["b".to_owned()]);
}

#[test]
fn filters_are_exposed_for_push_down() {
    let plan = compile(json!([
        projection(&["a", "ts"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "EQUAL_TO"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "string", "VALUE": "x", "VALUES": "y, z"}},
        {"sourceFields": ["ts"], "connectorOperator": {"S3": "BETWEEN"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "datetime", "LOWER_BOUND": "1612148400000", "UPPER_BOUND": "1612234800000"}}
    ]))
    .unwrap();
    assert_eq!(
        plan.filters(),
        vec![
            PushdownFilter {
                field: "a".into(),
                operator: Operator::EqualTo,
                values: vec!["x".into(), "y".into(), "z".into()],
                data_type: Some("string".into()),
            },
            PushdownFilter {
                field: "ts".into(),
                operator: Operator::Between,
                values: vec!["1612148400000".into(), "1612234800000".into()],
                data_type: Some("datetime".into()),
            },
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// apply

#[test]
fn map_all_keeps_typed_columns_and_source_order() {
    let plan = compile(json!([{"sourceFields": [], "taskType": "Map_all"}])).unwrap();
    let input = batch(vec![
        ("z", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ("a", Arc::new(BooleanArray::from(vec![true, false]))),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![0, 1]).with_timezone("UTC")),
        ),
    ]);
    let output = plan.apply(&input).unwrap();
    assert_eq!(
        output
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["z", "a", "ts"]
    );
    assert_eq!(
        output.batch.column(2).data_type(),
        input.column(2).data_type()
    );
    assert_eq!(output.filtered, 0);
}

#[test]
fn datetime_filters_and_maps_work_on_arrow_timestamps_and_dates() {
    let plan = compile(json!([
        projection(&["ts", "day"]),
        {"sourceFields": ["ts"], "connectorOperator": {"S3": "GREATER_THAN_OR_EQUAL_TO"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "timestamp", "VALUE": "1704164645123"}},
        map("ts", "ts", "datetime"),
        map("day", "day", "date"),
    ]))
    .unwrap();
    let input = batch(vec![
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(1_704_164_645_122_999),
                    Some(1_704_164_645_123_000),
                    None,
                ])
                .with_timezone("+09:00"),
            ),
        ),
        ("day", Arc::new(Date32Array::from(vec![0, 19_724, 1]))),
    ]);
    let output = plan.apply(&input).unwrap();
    assert_eq!(output.filtered, 2);
    assert_eq!(
        strings(output.batch.column(0)),
        [Some("2024-01-02T03:04:05.123Z")]
    );
    assert_eq!(
        strings(output.batch.column(1)),
        [Some("2024-01-02T00:00:00.000Z")]
    );
}

#[test]
fn large_utf8_and_dictionary_columns_are_accepted() {
    let plan = compile(json!([
        projection(&["name", "code"]),
        {"sourceFields": ["code"], "connectorOperator": {"S3": "GREATER_THAN"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "integer", "VALUE": "1"}},
        {"sourceFields": ["name"], "connectorOperator": {"S3": "MASK_LAST_N"}, "taskType": "Mask", "taskProperties": {"MASK_LENGTH": "1"}},
        map("name", "name", "string"),
        map("code", "code", "integer"),
    ]))
    .unwrap();
    let codes: DictionaryArray<Int32Type> = vec!["1", "2", "3"].into_iter().collect();
    let input = batch(vec![
        (
            "name",
            Arc::new(LargeStringArray::from(vec!["ab", "çé", "日本"])) as ArrayRef,
        ),
        ("code", Arc::new(codes)),
    ]);
    let output = plan.apply(&input).unwrap();
    assert_eq!(strings(output.batch.column(0)), [Some("ç*"), Some("日*")]);
    let codes: Vec<Option<i64>> = output
        .batch
        .column(1)
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(codes, [Some(2), Some(3)]);
}

#[test]
fn conversion_errors_report_input_rows_after_filtering() {
    let plan = compile(json!([
        projection(&["keep", "n"]),
        {"sourceFields": ["keep"], "connectorOperator": {"S3": "EQUAL_TO"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "boolean", "VALUE": "true"}},
        map("n", "n", "integer"),
    ]))
    .unwrap();
    let input = batch(vec![
        (
            "keep",
            text(&[Some("false"), Some("true"), Some("false"), Some("true")]),
        ),
        (
            "n",
            text(&[
                Some("bad"),
                Some("1"),
                Some("bad"),
                Some("99999999999999999999"),
            ]),
        ),
    ]);
    match plan.apply(&input) {
        Err(TransformError::Conversion {
            task,
            field,
            row,
            value,
            target,
            ..
        }) => {
            assert_eq!(
                (task, field.as_str(), row, value.as_str(), target),
                (2, "n", 3, "\"99999999999999999999\"", "integer")
            );
        }
        other => panic!("expected a conversion error, got {other:?}"),
    }
}

#[test]
fn drop_dataset_fails_only_on_rows_not_dropped_by_drop_record() {
    let plan = compile(json!([
        projection(&["a", "b"]),
        {"sourceFields": ["a"], "connectorOperator": {"S3": "VALIDATE_NON_NULL"}, "taskType": "Validate",
         "taskProperties": {"VALIDATION_ACTION": "DropRecord"}},
        {"sourceFields": ["b"], "connectorOperator": {"S3": "VALIDATE_NON_ZERO"}, "taskType": "Validate",
         "taskProperties": {"VALIDATION_ACTION": "DropDataset"}},
        map("b", "b", "double"),
    ]))
    .unwrap();
    let clean = batch(vec![
        ("a", text(&[None, Some("x")])),
        ("b", text(&[Some("0"), Some("2")])),
    ]);
    let output = plan.apply(&clean).unwrap();
    assert_eq!(output.filtered, 1);
    let values: Vec<Option<f64>> = output
        .batch
        .column(0)
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(values, [Some(2.0)]);

    let dirty = batch(vec![
        ("a", text(&[None, Some("x")])),
        ("b", text(&[Some("0"), Some("0.0")])),
    ]);
    let error = plan.apply(&dirty).unwrap_err();
    assert_eq!(
        error.to_string(),
        "tasks[2]: validation VALIDATE_NON_ZERO failed for field `b` at row 1 (value \"0.0\"); VALIDATION_ACTION DropDataset stops the flow"
    );
    assert_eq!(error.row(), Some(1));
    assert_eq!(error.domain(), sluice_types::ErrorDomain::User);
}

#[test]
fn validations_on_missing_fields() {
    let plan = compile(json!([
        {"sourceFields": [], "taskType": "Map_all"},
        {"sourceFields": ["absent"], "connectorOperator": {"S3": "VALIDATE_NON_NULL"}, "taskType": "Validate",
         "taskProperties": {"VALIDATION_ACTION": "TerminateFlow"}},
    ]))
    .unwrap();
    let input = batch(vec![("a", text(&[Some("x")]))]);
    assert!(matches!(
        plan.apply(&input),
        Err(TransformError::Validation { row: 0, .. })
    ));
}

#[test]
fn map_all_partition_key_missing_from_a_batch_is_a_null_column() {
    let plan = compile(json!([
        {"sourceFields": [], "taskType": "Map_all"},
        {"sourceFields": ["region"], "taskType": "Partition"},
    ]))
    .unwrap();
    let output = plan.apply(&batch(vec![("a", text(&[Some("x")]))])).unwrap();
    let region = output
        .batch
        .column_by_name("region")
        .expect("partition key column");
    assert_eq!(region.null_count(), 1);
}

#[test]
fn edits_on_fields_absent_without_projection_are_skipped() {
    let plan = compile(json!([
        {"sourceFields": [], "taskType": "Map_all"},
        {"sourceFields": ["secret"], "connectorOperator": {"S3": "MASK_ALL"}, "taskType": "Mask"},
        {"sourceFields": ["a", "secret"], "taskType": "Merge", "destinationField": "m", "taskProperties": {"CONCAT_FORMAT": "+"}},
        map("m", "merged", "string"),
    ]))
    .unwrap();
    let output = plan.apply(&batch(vec![("a", text(&[Some("x")]))])).unwrap();
    assert_eq!(strings(output.batch.column(0)), [Some("x+")]);
    assert_eq!(output.batch.schema().field(1).name(), "a");
}

#[test]
fn numeric_filters_on_float_columns_with_nan_and_negative_zero() {
    let plan = compile(json!([
        projection(&["x"]),
        {"sourceFields": ["x"], "connectorOperator": {"S3": "GREATER_THAN_OR_EQUAL_TO"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "double", "VALUE": "0"}},
        map("x", "x", "double"),
    ]))
    .unwrap();
    let input = batch(vec![(
        "x",
        Arc::new(Float64Array::from(vec![-0.0, f64::NAN, -1.0, 2.0])) as ArrayRef,
    )]);
    let output = plan.apply(&input).unwrap();
    let values: Vec<Option<f64>> = output
        .batch
        .column(0)
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(values, [Some(0.0), Some(2.0)]);
    assert_eq!(output.filtered, 2);
}

#[test]
fn duplicate_input_column_names_keep_the_first() {
    let plan = compile(json!([{"sourceFields": [], "taskType": "Map_all"}])).unwrap();
    let input = batch(vec![
        ("a", text(&[Some("first")])),
        ("a", text(&[Some("second")])),
    ]);
    let output = plan.apply(&input).unwrap();
    assert_eq!(output.batch.num_columns(), 1);
    assert_eq!(strings(output.batch.column(0)), [Some("first")]);
}

#[test]
fn unknown_destination_types_pass_values_through() {
    let plan = compile(json!([
        projection(&["addr"]),
        map("addr", "address", "address")
    ]))
    .unwrap();
    let input = batch(vec![(
        "addr",
        Arc::new(Int64Array::from(vec![7])) as ArrayRef,
    )]);
    let output = plan.apply(&input).unwrap();
    assert_eq!(output.batch.column(0).data_type(), &DataType::Int64);
}

#[test]
fn a_plan_is_reusable_across_batches_with_different_schemas() {
    let plan = compile(json!([
        projection(&["id", "v"]),
        map("id", "id", "integer"),
        map("v", "v", "string")
    ]))
    .unwrap();
    let first = plan
        .apply(&batch(vec![
            ("id", text(&[Some("1")])),
            ("v", text(&[Some("x")])),
        ]))
        .unwrap();
    let second = plan
        .apply(&batch(vec![(
            "id",
            Arc::new(Int64Array::from(vec![2])) as ArrayRef,
        )]))
        .unwrap();
    assert_eq!(first.batch.schema(), second.batch.schema());
    assert!(second.batch.column(1).is_null(0));
}

#[test]
fn plans_and_outputs_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TaskPlan>();
    assert_send_sync::<sluice_transforms::TaskOutput>();
    assert_send_sync::<TransformError>();
    assert_send_sync::<PlanError>();
}

#[test]
fn projection_without_mapping_tasks_passes_the_projected_fields_through() {
    let plan = compile(json!([projection(&["b", "a"])])).expect("compiles");
    let input = batch(vec![
        ("a", text(&[Some("1"), None])),
        ("b", text(&[Some("x"), Some("y")])),
        ("c", text(&[Some("dropped"), Some("dropped")])),
    ]);
    let output = plan.apply(&input).expect("applies").batch;
    let schema = output.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["b", "a"]);
    assert_eq!(strings(output.column(0)), [Some("x"), Some("y")]);
    assert_eq!(strings(output.column(1)), [Some("1"), None]);
}

#[test]
fn projection_with_a_map_outputs_only_mapped_fields() {
    let plan =
        compile(json!([projection(&["a", "b"]), map("a", "a2", "string")])).expect("compiles");
    let input = batch(vec![("a", text(&[Some("1")])), ("b", text(&[Some("x")]))]);
    let output = plan.apply(&input).expect("applies").batch;
    assert_eq!(output.num_columns(), 1);
    assert_eq!(output.schema().field(0).name(), "a2");
}
