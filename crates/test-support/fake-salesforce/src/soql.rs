//! The subset of SOQL the fake understands: `SELECT f, ... FROM Object [WHERE cond]
//! [ORDER BY f [ASC|DESC]] [LIMIT n]` and `SELECT COUNT() FROM Object [WHERE cond]`, where `cond` combines comparisons (`= != <> < <= > >=
//! LIKE IN NOT IN`) with `AND`, `OR`, `NOT` and parentheses. Literals are quoted strings,
//! numbers, `true`/`false`/`null`, and unquoted date and date-time literals, as in Salesforce.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::{Map, Value};

/// A SOQL syntax error, with the text Salesforce's `MALFORMED_QUERY` would carry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SoqlError(pub String);

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Selected fields, in order (empty for `COUNT()`).
    pub fields: Vec<String>,
    /// `SELECT COUNT()`: only the number of matching records is wanted.
    pub count: bool,
    /// The sObject queried.
    pub object: String,
    /// The `WHERE` condition.
    pub condition: Option<Expr>,
    /// `ORDER BY` field and whether it is descending.
    pub order_by: Option<(String, bool)>,
    /// `LIMIT`.
    pub limit: Option<usize>,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `'text'`.
    Str(String),
    /// `42`, `-1.5`.
    Num(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `2024-01-01T00:00:00Z` or `2024-01-01`.
    DateTime(DateTime<FixedOffset>),
}

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Both hold.
    And(Box<Expr>, Box<Expr>),
    /// Either holds.
    Or(Box<Expr>, Box<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// `field op literal`.
    Compare(String, CmpOp, Literal),
    /// `field [NOT] IN (literals)`.
    In(String, bool, Vec<Literal>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`.
    Eq,
    /// `!=` or `<>`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `LIKE`.
    Like,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Token>, SoqlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '\'' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(SoqlError("unterminated string literal".into())),
                        Some('\\') => {
                            let escaped = chars
                                .get(i + 1)
                                .ok_or_else(|| SoqlError("dangling escape".into()))?;
                            value.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => *other,
                            });
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            value.push(*other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(value));
            }
            '=' => {
                tokens.push(Token::Op("=".into()));
                i += 1;
            }
            '!' | '<' | '>' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                if matches!(two.as_str(), "!=" | "<=" | ">=" | "<>") {
                    tokens.push(Token::Op(two));
                    i += 2;
                } else if c == '!' {
                    return Err(SoqlError("unexpected '!'".into()));
                } else {
                    tokens.push(Token::Op(c.to_string()));
                    i += 1;
                }
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_alphanumeric()
                        || matches!(chars[i], '_' | '.' | '-' | ':' | '+'))
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(SoqlError(format!("unexpected character '{other}'"))),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        if let Some(Token::Word(w)) = self.peek()
            && w.eq_ignore_ascii_case(word)
        {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), SoqlError> {
        if self.keyword(word) {
            Ok(())
        } else {
            Err(SoqlError(format!(
                "expected {word} at token {}",
                self.pos + 1
            )))
        }
    }

    fn ident(&mut self) -> Result<String, SoqlError> {
        match self.next() {
            Some(Token::Word(w)) if w.starts_with(|c: char| c.is_alphabetic()) => Ok(w),
            other => Err(SoqlError(format!("expected a field name, found {other:?}"))),
        }
    }

    fn or_expr(&mut self) -> Result<Expr, SoqlError> {
        let mut left = self.and_expr()?;
        while self.keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, SoqlError> {
        let mut left = self.unary()?;
        while self.keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.or_expr()?;
            if self.next() != Some(Token::RParen) {
                return Err(SoqlError("expected ')'".into()));
            }
            return Ok(inner);
        }
        let field = self.ident()?;
        if self.keyword("IN") {
            return Ok(Expr::In(field, false, self.literal_list()?));
        }
        if self.keyword("NOT") {
            self.expect_keyword("IN")?;
            return Ok(Expr::In(field, true, self.literal_list()?));
        }
        if self.keyword("LIKE") {
            return Ok(Expr::Compare(field, CmpOp::Like, self.literal()?));
        }
        let op = match self.next() {
            Some(Token::Op(op)) => match op.as_str() {
                "=" => CmpOp::Eq,
                "!=" | "<>" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                ">=" => CmpOp::Ge,
                _ => return Err(SoqlError(format!("unknown operator {op}"))),
            },
            other => return Err(SoqlError(format!("expected an operator, found {other:?}"))),
        };
        Ok(Expr::Compare(field, op, self.literal()?))
    }

    fn literal_list(&mut self) -> Result<Vec<Literal>, SoqlError> {
        if self.next() != Some(Token::LParen) {
            return Err(SoqlError("expected '(' after IN".into()));
        }
        let mut values = vec![self.literal()?];
        loop {
            match self.next() {
                Some(Token::Comma) => values.push(self.literal()?),
                Some(Token::RParen) => return Ok(values),
                other => return Err(SoqlError(format!("expected ',' or ')', found {other:?}"))),
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Literal::Str(s)),
            Some(Token::Word(w)) => parse_word_literal(&w),
            other => Err(SoqlError(format!("expected a value, found {other:?}"))),
        }
    }
}

fn parse_word_literal(word: &str) -> Result<Literal, SoqlError> {
    if word.eq_ignore_ascii_case("null") {
        return Ok(Literal::Null);
    }
    if word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false") {
        return Ok(Literal::Bool(word.eq_ignore_ascii_case("true")));
    }
    if let Ok(n) = word.parse::<f64>() {
        return Ok(Literal::Num(n));
    }
    if let Some(dt) = parse_datetime(word) {
        return Ok(Literal::DateTime(dt));
    }
    Err(SoqlError(format!("invalid literal {word}")))
}

/// Parses Salesforce date-time text (`2024-01-01T00:00:00.000+0000`, RFC 3339, or a date).
pub fn parse_datetime(text: &str) -> Option<DateTime<FixedOffset>> {
    stored_datetime(text)
        .map(|t| t.and_utc().fixed_offset())
        .or_else(|| DateTime::parse_from_rfc3339(text).ok())
        .or_else(|| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|dt| dt.and_utc().fixed_offset())
        })
}

/// The form the fake stores date-times in (`2024-01-01T00:00:00.000+0000`), parsed without
/// chrono's general parser: filters compare it for every record of a query.
fn stored_datetime(text: &str) -> Option<chrono::NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() != 28 || &b[23..] != b"+0000" || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(5..7)?,
        number(8..10)?,
    )?
    .and_hms_milli_opt(
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    )
}

/// Parses a query.
pub fn parse(text: &str) -> Result<Query, SoqlError> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        pos: 0,
    };
    parser.expect_keyword("SELECT")?;
    let count = matches!(
        parser.tokens.get(parser.pos..parser.pos + 3),
        Some([Token::Word(w), Token::LParen, Token::RParen]) if w.eq_ignore_ascii_case("COUNT")
    );
    let mut fields = Vec::new();
    if count {
        parser.pos += 3;
    } else {
        fields.push(parser.ident()?);
        while parser.peek() == Some(&Token::Comma) {
            parser.pos += 1;
            fields.push(parser.ident()?);
        }
    }
    parser.expect_keyword("FROM")?;
    let object = parser.ident()?;
    let condition = if parser.keyword("WHERE") {
        Some(parser.or_expr()?)
    } else {
        None
    };
    let order_by = if parser.keyword("ORDER") {
        parser.expect_keyword("BY")?;
        let field = parser.ident()?;
        let desc = parser.keyword("DESC");
        if !desc {
            parser.keyword("ASC");
        }
        Some((field, desc))
    } else {
        None
    };
    let limit = if parser.keyword("LIMIT") {
        match parser.next() {
            Some(Token::Word(w)) => Some(
                w.parse()
                    .map_err(|_| SoqlError(format!("invalid LIMIT {w}")))?,
            ),
            other => return Err(SoqlError(format!("invalid LIMIT {other:?}"))),
        }
    } else {
        None
    };
    if let Some(extra) = parser.peek() {
        return Err(SoqlError(format!("unexpected token {extra:?}")));
    }
    Ok(Query {
        fields,
        count,
        object,
        condition,
        order_by,
        limit,
    })
}

impl Expr {
    /// Every field the condition mentions.
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.fields(out);
                b.fields(out);
            }
            Expr::Not(a) => a.fields(out),
            Expr::Compare(f, _, _) | Expr::In(f, _, _) => out.push(f.clone()),
        }
    }

    /// Whether `record` satisfies the condition.
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        match self {
            Expr::And(a, b) => a.matches(record) && b.matches(record),
            Expr::Or(a, b) => a.matches(record) || b.matches(record),
            Expr::Not(a) => !a.matches(record),
            Expr::Compare(field, op, literal) => {
                let value = lookup(record, field);
                compare_op(value, *op, literal)
            }
            Expr::In(field, negated, literals) => {
                let value = lookup(record, field);
                let found = literals.iter().any(|l| compare_op(value, CmpOp::Eq, l));
                found != *negated
            }
        }
    }
}

fn lookup<'a>(record: &'a Map<String, Value>, field: &str) -> &'a Value {
    // Field names in queries are usually spelled as stored; only then scan case-insensitively.
    if let Some(value) = record.get(field) {
        return value;
    }
    record
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(field))
        .map(|(_, v)| v)
        .unwrap_or(&Value::Null)
}

fn compare_op(value: &Value, op: CmpOp, literal: &Literal) -> bool {
    if matches!(literal, Literal::Null) {
        return match op {
            CmpOp::Eq => value.is_null(),
            CmpOp::Ne => !value.is_null(),
            _ => false,
        };
    }
    if value.is_null() {
        return op == CmpOp::Ne;
    }
    if op == CmpOp::Like {
        let (Some(text), Literal::Str(pattern)) = (value.as_str(), literal) else {
            return false;
        };
        return like(&text.to_lowercase(), &pattern.to_lowercase());
    }
    let ordering = compare_values(value, literal);
    let Some(ordering) = ordering else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
        CmpOp::Like => false,
    }
}

/// Orders a record value against a literal, as the field's type dictates.
pub fn compare_values(value: &Value, literal: &Literal) -> Option<Ordering> {
    match literal {
        Literal::Str(s) => {
            let text = match value {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            // Salesforce compares text case-insensitively.
            Some(text.to_lowercase().cmp(&s.to_lowercase()))
        }
        Literal::Num(n) => {
            let v = value
                .as_f64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))?;
            v.partial_cmp(n)
        }
        Literal::Bool(b) => value.as_bool().map(|v| v.cmp(b)),
        Literal::DateTime(dt) => value.as_str().and_then(parse_datetime).map(|v| v.cmp(dt)),
        Literal::Null => None,
    }
}

/// Orders two record values (for `ORDER BY`).
pub fn order_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => match (parse_datetime(x), parse_datetime(y)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.cmp(y),
        },
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Iterative wildcard matching with backtracking to the last '%'.
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn parses_and_evaluates_a_window_query() {
        let q = parse(
            "SELECT Id, Name FROM Account WHERE LastModifiedDate >= 2024-01-01T00:00:00Z \
             AND LastModifiedDate < 2024-01-02T00:00:00.000+0000 AND (Name LIKE 'ac%' OR \
             NumberOfEmployees > 10) ORDER BY Id LIMIT 5",
        )
        .unwrap();
        assert_eq!(q.fields, vec!["Id", "Name"]);
        assert_eq!(q.limit, Some(5));
        let cond = q.condition.unwrap();
        let inside =
            record(json!({"Name": "Acme", "LastModifiedDate": "2024-01-01T10:00:00.000+0000"}));
        let outside =
            record(json!({"Name": "Acme", "LastModifiedDate": "2024-01-02T00:00:00.000+0000"}));
        let other = record(
            json!({"Name": "Zed", "NumberOfEmployees": 5, "LastModifiedDate": "2024-01-01T10:00:00.000+0000"}),
        );
        assert!(cond.matches(&inside));
        assert!(!cond.matches(&outside));
        assert!(!cond.matches(&other));
    }

    #[test]
    fn strings_with_escapes_in_and_null() {
        let q = parse(
            "select Id from Account where Name in ('O\\'Brien', 'Ünïcode') and Phone != null",
        )
        .unwrap();
        let cond = q.condition.unwrap();
        assert!(cond.matches(&record(json!({"Name": "o'brien", "Phone": "1"}))));
        assert!(cond.matches(&record(json!({"Name": "Ünïcode", "Phone": "1"}))));
        assert!(!cond.matches(&record(json!({"Name": "O'Brien", "Phone": null}))));
    }

    #[test]
    fn malformed_queries_are_errors() {
        assert!(parse("SELECT FROM Account").is_err());
        assert!(parse("SELECT Id FROM Account WHERE Name = 'open").is_err());
        assert!(parse("SELECT Id FROM Account WHERE Name ~ 1").is_err());
        assert!(parse("SELECT Id FROM Account LIMIT x").is_err());
        assert!(parse("SELECT Id FROM Account trailing").is_err());
    }

    #[test]
    fn stored_date_times_parse_like_the_general_forms() {
        let stored = parse_datetime("2024-02-29T23:59:58.125+0000").unwrap();
        assert_eq!(stored, parse_datetime("2024-02-29T23:59:58.125Z").unwrap());
        assert_eq!(stored.timestamp_millis(), 1_709_251_198_125);
        assert!(parse_datetime("2023-02-29T00:00:00.000+0000").is_none());
        assert_eq!(
            parse_datetime("2024-03-01").unwrap(),
            parse_datetime("2024-03-01T00:00:00.000+0000").unwrap()
        );
    }

    #[test]
    fn count_queries() {
        let q = parse("SELECT COUNT() FROM Account WHERE Name = 'x'").unwrap();
        assert!(q.count);
        assert!(q.fields.is_empty());
        assert_eq!(q.object, "Account");
        assert!(!parse("SELECT Id FROM Account").unwrap().count);
        // `COUNT` as a field name is still a field.
        assert_eq!(
            parse("SELECT Count FROM Account").unwrap().fields,
            ["Count"]
        );
        assert!(parse("SELECT COUNT( FROM Account").is_err());
    }

    #[test]
    fn like_wildcards() {
        assert!(like("abc", "a%"));
        assert!(like("abc", "%c"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(like("", "%"));
    }
}
