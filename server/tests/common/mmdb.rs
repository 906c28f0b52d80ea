//! Writes a tiny MaxMind DB (format 2.0) for tests: one IPv4 network mapped to a country and a
//! city, the shape of GeoLite2-City records. Real databases cannot be downloaded here, and the
//! reader must be exercised over a real file. Format: <https://maxmind.github.io/MaxMind-DB/>.

use std::net::Ipv4Addr;

/// A value of the MaxMind DB data format.
enum Value<'a> {
    Text(&'a str),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'a str, Value<'a>)>),
    Array(Vec<Value<'a>>),
}

/// Appends a control byte for `kind` (1–7 direct, 8+ extended) and a size below 29.
fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    assert!(size < 29, "small values only");
    if kind <= 7 {
        out.push((kind << 5) | size as u8);
    } else {
        out.push(size as u8);
        out.push(kind - 7);
    }
}

fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Text(text) => {
            control(out, 2, text.len());
            out.extend_from_slice(text.as_bytes());
        }
        Value::U16(n) => {
            control(out, 5, 2);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::U32(n) => {
            control(out, 6, 4);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::U64(n) => {
            control(out, 9, 8);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Map(entries) => {
            control(out, 7, entries.len());
            for (key, value) in entries {
                encode(out, &Value::Text(key));
                encode(out, value);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for item in items {
                encode(out, item);
            }
        }
    }
}

/// The bytes of a database where `network`/`prefix` is in `city`, `country`.
pub fn city_database(network: Ipv4Addr, prefix: u32, country: &str, city: &str) -> Vec<u8> {
    let names = |name| Value::Map(vec![("en", Value::Text(name))]);
    let record = Value::Map(vec![
        ("city", Value::Map(vec![("names", names(city))])),
        ("country", Value::Map(vec![("names", names(country))])),
    ]);
    let mut data = Vec::new();
    encode(&mut data, &record);

    // One node per bit of the prefix: the network's bit leads on, the other side is empty.
    let node_count = prefix;
    let empty = node_count;
    let found = node_count + 16; // the data section's offset 0
    let bits = u32::from(network);
    let mut tree = Vec::new();
    for depth in 0..prefix {
        let next = if depth + 1 == prefix {
            found
        } else {
            depth + 1
        };
        let one = bits & (1 << (31 - depth)) != 0;
        let (left, right) = if one { (empty, next) } else { (next, empty) };
        tree.extend_from_slice(&left.to_be_bytes()[1..]);
        tree.extend_from_slice(&right.to_be_bytes()[1..]);
    }

    let metadata = Value::Map(vec![
        ("binary_format_major_version", Value::U16(2)),
        ("binary_format_minor_version", Value::U16(0)),
        ("build_epoch", Value::U64(1_767_225_600)),
        ("database_type", Value::Text("GeoIP2-City")),
        (
            "description",
            Value::Map(vec![("en", Value::Text("Kefu test"))]),
        ),
        ("ip_version", Value::U16(4)),
        ("languages", Value::Array(vec![Value::Text("en")])),
        ("node_count", Value::U32(node_count)),
        ("record_size", Value::U16(24)),
    ]);
    let mut file = tree;
    file.extend_from_slice(&[0; 16]);
    file.extend_from_slice(&data);
    file.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    encode(&mut file, &metadata);
    file
}
