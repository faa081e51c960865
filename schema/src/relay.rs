//! Relay's cursor connections in both directions, over keyset windows read from Postgres (or
//! from a list already in hand).
//!
//! The rules are the Relay Cursor Connections spec's `EdgesToReturn` and `PageInfo` sections:
//! - cursors cut the list first (`after`, `before`, exclusive); then `first` keeps the head of
//!   what is left, then `last` keeps the tail of *that* (both may be given: `first: 10, last: 3`
//!   is items 8-10 of the window);
//! - a negative `first` or `last` is an error (`BAD_USER_INPUT`), as is one over [`MAX_PAGE`];
//! - `hasNextPage` is true when `first` cut something off, `hasPreviousPage` when `last` did
//!   (counted over the window, not over the `first` slice); the spec lets a server also answer
//!   true when it can cheaply tell that items lie beyond a cursor, which is done here as
//!   `after` given ⇒ `hasPreviousPage`, `before` given ⇒ `hasNextPage` (the cursor is an item
//!   the client saw, so it lies beyond);
//! - neither `first` nor `last`: `first` = [`DEFAULT_PAGE`].
//!
//! [`Paging::window`] says which rows to read (at most `max(first, last) + 1`, one look-ahead
//! row decides the `pageInfo` flag) and [`Paging::connection`] slices them.

use async_graphql::connection::{Connection, Edge};
use linkplane_store::windows::Window;

use crate::{
    common::{DEFAULT_PAGE, MAX_PAGE},
    error::{ApiError, ApiResult},
};

/// Validated Relay arguments with parsed cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paging<K> {
    first: Option<usize>,
    last: Option<usize>,
    after: Option<K>,
    before: Option<K>,
}

/// One of `first`/`last`, validated.
fn count(name: &str, n: Option<i32>) -> ApiResult<Option<usize>> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Err(ApiError::BadUserInput(format!(
            "`{name}` must not be negative (got {n})"
        ))),
        Some(n) if n > MAX_PAGE => Err(ApiError::BadUserInput(format!(
            "`{name}` must be at most {MAX_PAGE} (got {n})"
        ))),
        Some(n) => Ok(Some(n as usize)),
    }
}

impl<K> Paging<K> {
    /// Validates the four arguments; `parse` reads a cursor (its error names the cursor).
    pub(crate) fn new(
        first: Option<i32>,
        after: Option<&str>,
        last: Option<i32>,
        before: Option<&str>,
        parse: impl Fn(&str) -> ApiResult<K>,
    ) -> ApiResult<Self> {
        let mut first = count("first", first)?;
        let last = count("last", last)?;
        if first.is_none() && last.is_none() {
            first = Some(DEFAULT_PAGE as usize);
        }
        Ok(Paging {
            first,
            last,
            after: after.map(&parse).transpose()?,
            before: before.map(&parse).transpose()?,
        })
    }

    /// The rows to read: forward when `first` is given (enough for both slices and one
    /// look-ahead), else backward from `before` (`last` + one).
    pub(crate) fn window(&self) -> Window<K>
    where
        K: Clone,
    {
        let (backward, n) = match (self.first, self.last) {
            (Some(f), l) => (false, f.max(l.unwrap_or(0))),
            (None, Some(l)) => (true, l),
            (None, None) => (false, DEFAULT_PAGE as usize),
        };
        Window {
            after: self.after.clone(),
            before: self.before.clone(),
            backward,
            limit: n as i64 + 1,
        }
    }

    /// The connection of `rows` read with [`Paging::window`] (in the window's read order).
    pub(crate) fn connection<T: async_graphql::OutputType>(
        &self,
        mut rows: Vec<T>,
        cursor: impl Fn(&T) -> String,
    ) -> Connection<String, T> {
        let (has_previous, has_next) = match (self.first, self.last) {
            (Some(first), last) => {
                // Forward read: `rows` is the head of the window (one extra, or all of it).
                let has_next = rows.len() > first;
                let has_previous = last.is_some_and(|l| rows.len() > l);
                rows.truncate(first);
                if let Some(l) = last {
                    let skip = rows.len().saturating_sub(l);
                    rows.drain(..skip);
                }
                (has_previous, has_next)
            }
            (None, last) => {
                // Backward read: `rows` is the tail of the window, nearest `before` first.
                let last = last.unwrap_or(DEFAULT_PAGE as usize);
                let has_previous = rows.len() > last;
                rows.truncate(last);
                rows.reverse();
                (has_previous, false)
            }
        };
        let mut conn = Connection::new(
            has_previous || self.after.is_some(),
            has_next || self.before.is_some(),
        );
        conn.edges
            .extend(rows.into_iter().map(|t| Edge::new(cursor(&t), t)));
        conn
    }

    /// Pages a list already in hand, sorted ascending by `key` (the window is cut in memory).
    pub(crate) fn page_sorted<T: async_graphql::OutputType>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> K,
        cursor: impl Fn(&T) -> String,
    ) -> Connection<String, T>
    where
        K: Ord + Clone,
    {
        let w = self.window();
        let inside: Vec<T> = items
            .into_iter()
            .filter(|t| {
                let k = key(t);
                w.after.as_ref().is_none_or(|a| k > *a) && w.before.as_ref().is_none_or(|b| k < *b)
            })
            .collect();
        let limit = w.limit as usize;
        let rows = if w.backward {
            inside.into_iter().rev().take(limit).collect()
        } else {
            inside.into_iter().take(limit).collect()
        };
        self.connection(rows, cursor)
    }
}

/// Complexity of a field paged by `first` or `last` (the larger when both are given).
pub(crate) fn complexity(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let n = first.unwrap_or(0).max(last.unwrap_or(0));
    let n = if first.is_none() && last.is_none() {
        DEFAULT_PAGE
    } else {
        n
    };
    (n.clamp(1, MAX_PAGE) as usize).saturating_mul(child)
}

/// Parses a numeric id cursor.
pub(crate) fn id_cursor(s: &str) -> ApiResult<i64> {
    s.parse::<i64>()
        .map_err(|_| ApiError::BadUserInput(format!("invalid cursor {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items 1..=n paged in memory; returns (ids, hasPrevious, hasNext).
    fn page(
        n: i64,
        first: Option<i32>,
        after: Option<&str>,
        last: Option<i32>,
        before: Option<&str>,
    ) -> (Vec<i64>, bool, bool) {
        let p = Paging::new(first, after, last, before, id_cursor).unwrap();
        let c = p.page_sorted((1..=n).collect(), |i| *i, |i| i.to_string());
        (
            c.edges.iter().map(|e| e.node).collect(),
            c.has_previous_page,
            c.has_next_page,
        )
    }

    #[test]
    fn forward_and_backward_pages_meet_in_the_middle() {
        assert_eq!(
            page(10, Some(3), None, None, None),
            (vec![1, 2, 3], false, true)
        );
        assert_eq!(
            page(10, Some(3), Some("3"), None, None),
            (vec![4, 5, 6], true, true)
        );
        assert_eq!(
            page(10, None, None, Some(3), None),
            (vec![8, 9, 10], true, false)
        );
        assert_eq!(
            page(10, None, None, Some(3), Some("8")),
            (vec![5, 6, 7], true, true)
        );
        assert_eq!(
            page(3, None, None, Some(5), None),
            (vec![1, 2, 3], false, false)
        );
        // Both cursors: the window between them.
        assert_eq!(
            page(10, Some(10), Some("2"), None, Some("6")),
            (vec![3, 4, 5], true, true)
        );
    }

    /// Relay spec, EdgesToReturn: `first` slices first, then `last` takes the tail of that;
    /// hasPreviousPage counts `last` against the whole cursored window.
    #[test]
    fn first_and_last_together_follow_the_spec_order() {
        assert_eq!(
            page(20, Some(10), None, Some(3), None),
            (vec![8, 9, 10], true, true)
        );
        assert_eq!(
            page(5, Some(10), None, Some(3), None),
            (vec![3, 4, 5], true, false)
        );
        assert_eq!(
            page(2, Some(10), None, Some(3), None),
            (vec![1, 2], false, false)
        );
    }

    #[test]
    fn negative_and_oversized_counts_are_refused() {
        for (f, l) in [
            (Some(-1), None),
            (None, Some(-1)),
            (Some(MAX_PAGE + 1), None),
        ] {
            let e = Paging::<i64>::new(f, None, l, None, id_cursor).unwrap_err();
            assert!(matches!(e, ApiError::BadUserInput(_)), "{e:?}");
        }
        let e = Paging::<i64>::new(None, Some("x"), None, None, id_cursor).unwrap_err();
        assert!(
            matches!(&e, ApiError::BadUserInput(m) if m.contains("invalid cursor")),
            "{e:?}"
        );
    }

    #[test]
    fn the_window_reads_one_row_past_the_larger_slice() {
        let p = Paging::new(Some(10), None, Some(30), None, id_cursor).unwrap();
        assert_eq!((p.window().backward, p.window().limit), (false, 31));
        let p = Paging::new(None, None, Some(4), Some("9"), id_cursor).unwrap();
        let w = p.window();
        assert_eq!((w.backward, w.limit, w.before), (true, 5, Some(9)));
    }
}
