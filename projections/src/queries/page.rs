//! Pagination shared by every list: page sizes (1 to 100, 20 by default) and cursors,
//! which are opaque to clients (lower-case hex of a position the query alone reads back,
//! printable ASCII text), so that the API document can state the exact shape of a cursor
//! of each list as a pattern: every text of that shape is a position.
//!
//! A list query takes a [`PageRequest`] (the size and where the previous page ended),
//! reads one row more than it answers, and [`Page::cut`] turns that into the page and the
//! cursor of the next one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::InvalidParameter;

/// The default page size.
pub const DEFAULT_LIMIT: i64 = 20;

/// The largest page size.
pub const MAX_LIMIT: i64 = 100;

/// Checks a page size: 1 to 100, 20 when absent.
pub fn limit(limit: Option<i64>) -> Result<i64, InvalidParameter> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(InvalidParameter::new(
            "limit",
            "limit must be between 1 and 100",
        )),
    }
}

/// Makes an opaque cursor of `position`.
pub fn encode_cursor(position: &str) -> String {
    hex::encode(position)
}

/// The position in a cursor made by [`encode_cursor`]: lower-case hex of printable ASCII.
pub fn decode_cursor(cursor: &str) -> Result<String, InvalidParameter> {
    if cursor.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(foreign_cursor());
    }
    hex::decode(cursor)
        .ok()
        .filter(|bytes| !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7f).contains(b)))
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(foreign_cursor)
}

/// The refusal of a cursor this API did not give out.
pub fn foreign_cursor() -> InvalidParameter {
    InvalidParameter::new("cursor", "cursor is not one this API gave out")
}

/// Where a page ends, written into and read back from a cursor.
pub trait Position: Sized {
    /// The position as text (before it is made opaque).
    fn to_text(&self) -> String;
    /// The position a cursor's text names, if it is one.
    fn from_text(text: &str) -> Option<Self>;
}

/// A key of a list in key order (a product's SKU).
impl Position for String {
    fn to_text(&self) -> String {
        self.clone()
    }

    fn from_text(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

/// The position in a list ordered newest first by a time, ties broken by id (descending):
/// as text, the time in microseconds since 1970 (1 to 18 digits), `|` and the id as 32
/// lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewestFirst {
    /// The time of the last row of the page.
    pub at: DateTime<Utc>,
    /// Its id.
    pub id: Uuid,
}

impl Position for NewestFirst {
    fn to_text(&self) -> String {
        format!("{}|{}", self.at.timestamp_micros(), self.id.simple())
    }

    fn from_text(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('|')?;
        let digits = |s: &str, most: usize, hex: bool| {
            (1..=most).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&b)))
        };
        if !digits(micros, 18, false) || id.len() != 32 || !digits(id, 32, true) {
            return None;
        }
        Some(Self {
            at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// A page asked for: its size and where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<P> {
    /// After this position; from the start when `None`.
    pub after: Option<P>,
    /// How many rows at most, 1 to 100.
    pub limit: i64,
}

impl<P: Position> PageRequest<P> {
    /// The page a client's `cursor` and `limit` ask for; the size is checked first.
    pub fn parse(cursor: Option<&str>, limit: Option<i64>) -> Result<Self, InvalidParameter> {
        let limit = self::limit(limit)?;
        let after = match cursor {
            None => None,
            Some(cursor) => Some(P::from_text(&decode_cursor(cursor)?).ok_or_else(foreign_cursor)?),
        };
        Ok(Self { after, limit })
    }

    /// Rows to read: one more than the page holds, to know whether another follows.
    pub fn rows_to_read(&self) -> i64 {
        self.limit + 1
    }
}

/// One page of a list and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows, in the list's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The page of `rows` (read with [`PageRequest::rows_to_read`]) and, when more rows
    /// follow, the cursor at the position of its last row.
    pub fn cut<P: Position>(mut rows: Vec<T>, limit: i64, position: impl Fn(&T) -> P) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|row| encode_cursor(&position(row).to_text()))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    /// The same page with every row changed by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let cursor = encode_cursor("2024-05-01T10:00:00+00:00|abc");
        assert_eq!(
            decode_cursor(&cursor).unwrap(),
            "2024-05-01T10:00:00+00:00|abc"
        );
        assert_eq!(decode_cursor("zz").unwrap_err().field, "cursor");
        assert_eq!(decode_cursor("ff").unwrap_err().field, "cursor");
        // Upper-case hex, control characters and the empty text are not cursors.
        assert_eq!(decode_cursor("4A").unwrap_err().field, "cursor");
        assert_eq!(decode_cursor("0a").unwrap_err().field, "cursor");
        assert_eq!(decode_cursor("").unwrap_err().field, "cursor");
        assert_eq!(decode_cursor("4a7e").unwrap(), "J~");
    }

    #[test]
    fn newest_first_positions_round_trip_and_other_text_is_refused() {
        let position = NewestFirst {
            at: "2024-05-01T10:00:00Z".parse().unwrap(),
            id: Uuid::from_u128(7),
        };
        let cursor = encode_cursor(&position.to_text());
        assert_eq!(
            position.to_text(),
            "1714557600000000|00000000000000000000000000000007"
        );
        let request = PageRequest::<NewestFirst>::parse(Some(&cursor), None).unwrap();
        assert_eq!(request.after, Some(position));
        assert_eq!(request.limit, 20);
        let largest = format!("{}|{}", "9".repeat(18), "f".repeat(32));
        assert!(PageRequest::<NewestFirst>::parse(Some(&encode_cursor(&largest)), None).is_ok());
        for not_a_position in [
            "SKU-1",
            "2024-05-01T10:00:00+00:00|00000000-0000-0000-0000-000000000007",
            "+1|00000000000000000000000000000007",
            "1|0000000000000000000000000000000F",
            "1|0000000000000000000000000000007",
            "1234567890123456789|00000000000000000000000000000007",
        ] {
            assert_eq!(
                PageRequest::<NewestFirst>::parse(Some(&encode_cursor(not_a_position)), None)
                    .unwrap_err()
                    .field,
                "cursor",
                "{not_a_position}"
            );
        }
        assert_eq!(
            PageRequest::<NewestFirst>::parse(Some("zz"), Some(500))
                .unwrap_err()
                .field,
            "limit"
        );
    }

    #[test]
    fn a_page_cut_from_one_row_too_many_points_at_its_last_row() {
        let page = Page::cut(vec!["A".to_string(), "B".into(), "C".into()], 2, |s| {
            s.clone()
        });
        assert_eq!(page.items, ["A", "B"]);
        assert_eq!(page.next_cursor, Some(encode_cursor("B")));
        let last = Page::cut(vec!["A".to_string(), "B".into()], 2, |s| s.clone());
        assert_eq!(last.items, ["A", "B"]);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn page_sizes_are_one_to_a_hundred_and_twenty_by_default() {
        assert_eq!(limit(None), Ok(20));
        assert_eq!(limit(Some(1)), Ok(1));
        assert_eq!(limit(Some(100)), Ok(100));
        assert_eq!(limit(Some(0)).unwrap_err().field, "limit");
        assert_eq!(limit(Some(101)).unwrap_err().field, "limit");
    }
}
