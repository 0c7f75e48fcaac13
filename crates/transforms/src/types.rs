//! Connector-native type names (`DATA_TYPE`, `SOURCE_DATA_TYPE`, `DESTINATION_DATA_TYPE`) mapped
//! to the few value families the engine computes with.
//!
//! AppFlow passes the connector's own type names through unchanged (Salesforce `picklist`,
//! `currency`, ...), so the mapping is by name, case-insensitively. Names outside the table are
//! deliberately not an error: the value passes through untouched.

/// The value family a type name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeClass {
    /// Text; compares lexicographically, maps to `Utf8`.
    Text,
    /// Whole numbers; map to `Int64`, compare as numbers.
    Integer,
    /// Fractional numbers; map to `Float64`, compare as numbers.
    Float,
    /// `true`/`false`.
    Boolean,
    /// Instants; compare as epoch milliseconds, map to ISO-8601 UTC text.
    DateTime,
}

impl TypeClass {
    /// Classifies a connector type name; `None` for names the engine does not know.
    pub(crate) fn of(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        let class = match name.as_str() {
            "string" | "text" | "id" | "picklist" | "multipicklist" | "combobox" | "phone"
            | "email" | "url" | "textarea" | "reference" | "encryptedstring" => Self::Text,
            "integer" | "int" | "long" | "short" | "bigint" => Self::Integer,
            "double" | "float" | "decimal" | "currency" | "percent" | "number" => Self::Float,
            "boolean" | "bool" => Self::Boolean,
            "date" | "datetime" | "timestamp" => Self::DateTime,
            _ => return None,
        };
        Some(class)
    }

    /// The family's name in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Text => "string",
            Self::Integer => "integer",
            Self::Float => "double",
            Self::Boolean => "boolean",
            Self::DateTime => "datetime",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_connector_names_case_insensitively() {
        assert_eq!(TypeClass::of("string"), Some(TypeClass::Text));
        assert_eq!(TypeClass::of(" Picklist "), Some(TypeClass::Text));
        assert_eq!(TypeClass::of("LONG"), Some(TypeClass::Integer));
        assert_eq!(TypeClass::of("currency"), Some(TypeClass::Float));
        assert_eq!(TypeClass::of("percent"), Some(TypeClass::Float));
        assert_eq!(TypeClass::of("Boolean"), Some(TypeClass::Boolean));
        assert_eq!(TypeClass::of("datetime"), Some(TypeClass::DateTime));
        assert_eq!(TypeClass::of("date"), Some(TypeClass::DateTime));
        assert_eq!(TypeClass::of("timestamp"), Some(TypeClass::DateTime));
    }

    #[test]
    fn unknown_names_are_not_classified() {
        assert_eq!(TypeClass::of("address"), None);
        assert_eq!(TypeClass::of(""), None);
        assert_eq!(TypeClass::of("strïng"), None);
    }
}
