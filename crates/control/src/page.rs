//! `MaxResults` / `NextToken` pagination.
//!
//! Listings are ordered by a stable key (the resource id), and a `NextToken` is the
//! opaque, versioned encoding of the last key returned, so pages stay stable when
//! resources are added or removed between calls.

use base64::Engine;
use strato_common::{Error, Result};

/// A validated page request.
#[derive(Clone, Debug)]
pub struct PageRequest {
    /// `None` when the caller asked for everything.
    pub max_results: Option<usize>,
    /// Resume after this key.
    pub after: Option<String>,
}

impl PageRequest {
    /// Validates `MaxResults` against the action's bounds and decodes `NextToken`.
    pub fn new(
        max_results: Option<i64>,
        next_token: Option<&str>,
        min: i64,
        max: i64,
    ) -> Result<PageRequest> {
        let max_results = match max_results {
            None => None,
            Some(n) if n < min || n > max => {
                return Err(Error::invalid_value(format!(
                    "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between {min} and {max}."
                )))
            }
            Some(n) => Some(n as usize),
        };
        let after = match next_token {
            None | Some("") => None,
            Some(t) => Some(decode_token(t)?),
        };
        Ok(PageRequest { max_results, after })
    }

    /// Everything, no token.
    pub fn all() -> PageRequest {
        PageRequest {
            max_results: None,
            after: None,
        }
    }
}

/// Encodes a resume key as a NextToken.
pub fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{key}"))
}

fn decode_token(t: &str) -> Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("v1:").map(str::to_string))
        .ok_or_else(|| Error::InvalidPaginationToken(format!("Invalid pagination token: {t}")))
}

/// Applies a page to an already sorted, filtered list keyed by `key`: returns the page
/// and the token for the next one.
pub fn paginate<T>(
    items: Vec<T>,
    page: &PageRequest,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let mut items: Vec<T> = match &page.after {
        Some(after) => items.into_iter().filter(|i| key(i) > *after).collect(),
        None => items,
    };
    match page.max_results {
        Some(n) if items.len() > n => {
            items.truncate(n);
            let token = items.last().map(|i| encode_token(&key(i)));
            (items, token)
        }
        _ => (items, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_stable() {
        let items: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
        let mut page = PageRequest::new(Some(10), None, 5, 1000).unwrap();
        let mut seen = vec![];
        loop {
            let (got, next) = paginate(items.clone(), &page, |s| s.clone());
            seen.extend(got);
            match next {
                Some(t) => page = PageRequest::new(Some(10), Some(&t), 5, 1000).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn bounds_and_bad_tokens() {
        assert!(PageRequest::new(Some(4), None, 5, 1000).is_err());
        assert!(PageRequest::new(Some(1001), None, 5, 1000).is_err());
        assert!(matches!(
            PageRequest::new(None, Some("garbage!"), 5, 1000),
            Err(Error::InvalidPaginationToken(_))
        ));
    }
}
