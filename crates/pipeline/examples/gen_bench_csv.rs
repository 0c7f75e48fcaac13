//! Writes the deterministic benchmark CSV used by `scripts/bench.sh`.
//!
//! ```text
//! cargo run --release -p sluice-pipeline --example gen_bench_csv -- OUT.csv [ROWS]
//! ```
//!
//! 1,000,000 rows (the default) make a ~350 MB file of 19 columns: ids, a UUID, names, emails,
//! phone numbers, numbers, booleans, ISO-8601 timestamps, an IP address and a 100-character
//! free-text column that sometimes needs RFC-4180 quoting and contains non-ASCII letters. The
//! same arguments always produce byte-identical output (a fixed-seed SplitMix64 generator, no
//! clock, no locale), so figures from different machines and commits are comparable.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

const DEFAULT_ROWS: u64 = 1_000_000;
const SEED: u64 = 0x5EED_F10E;
const TEXT_CHARS: usize = 100;

const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Amélie",
    "Zoë",
    "José",
    "Björn",
    "Chloé",
    "Søren",
    "Noah",
    "Olivia",
    "Liam",
    "Emma",
    "Mateo",
    "Sofía",
    "Yuki",
    "Aarav",
    "Fatima",
    "Chen",
    "Ivan",
    "Ingrid",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Müller",
    "Dubois",
    "Rossi",
    "Nakamura",
    "O'Brien",
    "Kowalski",
    "Novák",
    "Andersson",
    "Silva",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.example.net",
    "example.io",
];
const CITIES: &[&str] = &[
    "New York",
    "Los Angeles",
    "Chicago",
    "Houston",
    "Phoenix",
    "Paris",
    "Berlin",
    "Madrid",
    "Tokyo",
    "São Paulo",
    "Zürich",
    "Kraków",
    "Toronto",
    "Sydney",
    "Mumbai",
    "Seoul",
];
const COUNTRIES: &[&str] = &[
    "US", "FR", "DE", "ES", "JP", "BR", "CH", "PL", "CA", "AU", "IN",
];
const STATUSES: &[&str] = &["active", "pending", "suspended", "closed", "trial"];
const TAGS: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "vip",
    "churn-risk",
    "b2b",
    "b2c",
];
const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "café",
    "naïve",
    "déjà",
    "vu",
    "über",
    "\"quoted\"",
    "commas,",
    "data",
    "flow",
    "record",
    "batch",
];
const HEADER: &str = "id,customer_uuid,first_name,last_name,email,phone,city,country,age,score,\
                      balance,active,signup_date,created_at,updated_at,status,tags,ip_address,\
                      description\n";

/// SplitMix64: tiny, fast, and good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), without a date library
/// so generation stays fast and dependency-free.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn write_timestamp(out: &mut Vec<u8>, epoch_seconds: i64, millis: Option<u64>) -> io::Result<()> {
    let (year, month, day) = civil_from_days(epoch_seconds.div_euclid(86_400));
    let second_of_day = epoch_seconds.rem_euclid(86_400);
    let (hour, minute, second) = (
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
    )?;
    if let Some(millis) = millis {
        write!(out, ".{millis:03}")?;
    }
    out.push(b'Z');
    Ok(())
}

/// A free-text value of exactly `TEXT_CHARS` characters, quoted when it contains a comma or a
/// quote (inner quotes doubled, RFC 4180).
fn write_text(out: &mut Vec<u8>, rng: &mut Rng, scratch: &mut String) {
    scratch.clear();
    let mut chars = 0;
    while chars < TEXT_CHARS {
        if chars > 0 {
            scratch.push(' ');
            chars += 1;
        }
        for c in rng.pick(WORDS).chars() {
            if chars == TEXT_CHARS {
                break;
            }
            scratch.push(c);
            chars += 1;
        }
    }
    if scratch.contains([',', '"']) {
        out.push(b'"');
        for byte in scratch.bytes() {
            if byte == b'"' {
                out.push(b'"');
            }
            out.push(byte);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(scratch.as_bytes());
    }
}

fn write_row(out: &mut Vec<u8>, rng: &mut Rng, id: u64, text: &mut String) -> io::Result<()> {
    let first = rng.pick(FIRST_NAMES);
    let last = rng.pick(LAST_NAMES);
    let (a, b) = (rng.next(), rng.next());
    write!(
        out,
        "{id},{:08x}-{:04x}-4{:03x}-{:04x}-{:012x},{first},{last},",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0x0FFF,
        ((b >> 48) & 0x3FFF) | 0x8000,
        b & 0xFFFF_FFFF_FFFF
    )?;
    // Apostrophes and accents are legal in names but not in the local part we generate.
    let local_first: String = first.chars().filter(char::is_ascii_alphabetic).collect();
    let local_last: String = last.chars().filter(char::is_ascii_alphabetic).collect();
    write!(
        out,
        "{}.{}{}@{},+1-555-{:03}-{:04},",
        local_first.to_ascii_lowercase(),
        local_last.to_ascii_lowercase(),
        id % 997,
        rng.pick(DOMAINS),
        rng.below(1_000),
        rng.below(10_000)
    )?;
    let city = rng.pick(CITIES);
    let country = rng.pick(COUNTRIES);
    let age = 18 + rng.below(72);
    let score = rng.below(100_000) as f64 / 1_000.0;
    let balance_cents = rng.below(10_500_000) as i64 - 500_000;
    let active = rng.below(4) != 0;
    write!(
        out,
        "{city},{country},{age},{score:.3},{}.{:02},{active},",
        balance_cents / 100,
        (balance_cents % 100).abs()
    )?;
    // 2015-01-01 .. 2025-01-01
    let created = 1_420_070_400 + rng.below(315_532_800) as i64;
    let updated = created + rng.below(40_000_000) as i64;
    let (year, month, day) = civil_from_days(created.div_euclid(86_400));
    write!(out, "{year:04}-{month:02}-{day:02},")?;
    write_timestamp(out, created, None)?;
    out.push(b',');
    write_timestamp(out, updated, Some(rng.below(1_000)))?;
    let tags = [rng.pick(TAGS), rng.pick(TAGS), rng.pick(TAGS)];
    write!(
        out,
        ",{},{};{};{},10.{}.{}.{},",
        rng.pick(STATUSES),
        tags[0],
        tags[1],
        tags[2],
        rng.below(256),
        rng.below(256),
        rng.below(256)
    )?;
    write_text(out, rng, text);
    out.push(b'\n');
    Ok(())
}

fn generate(path: &str, rows: u64) -> io::Result<u64> {
    let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut rng = Rng(SEED);
    let mut chunk = Vec::with_capacity(1 << 20);
    let mut text = String::with_capacity(TEXT_CHARS * 2);
    let mut written = 0u64;
    chunk.extend_from_slice(HEADER.as_bytes());
    for id in 1..=rows {
        write_row(&mut chunk, &mut rng, id, &mut text)?;
        if chunk.len() >= 1 << 20 {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
            chunk.clear();
        }
    }
    file.write_all(&chunk)?;
    written += chunk.len() as u64;
    file.flush()?;
    Ok(written)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: gen_bench_csv OUT.csv [ROWS]");
        return ExitCode::from(2);
    };
    let rows = match args.next().map(|rows| rows.replace('_', "").parse::<u64>()) {
        None => DEFAULT_ROWS,
        Some(Ok(rows)) => rows,
        Some(Err(error)) => {
            eprintln!("error: ROWS must be a non-negative integer: {error}");
            return ExitCode::from(2);
        }
    };
    match generate(&path, rows) {
        Ok(bytes) => {
            println!("wrote {rows} rows, {bytes} bytes to {path}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot write {path}: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn text_is_exactly_one_hundred_characters_and_quoted_when_needed() {
        let mut rng = Rng(SEED);
        let mut scratch = String::new();
        for _ in 0..1_000 {
            let mut out = Vec::new();
            write_text(&mut out, &mut rng, &mut scratch);
            assert_eq!(scratch.chars().count(), TEXT_CHARS);
            let rendered = String::from_utf8(out).expect("utf-8");
            let needs_quotes = scratch.contains([',', '"']);
            assert_eq!(rendered.starts_with('"'), needs_quotes, "{rendered}");
        }
    }
}
