//! Decoding of EC2 Query parameters into typed values.
//!
//! Every getter validates and answers with EC2's own error (`MissingParameter`,
//! `InvalidParameterValue`) so actions never see a malformed value.

use std::collections::BTreeMap;
use strato_common::{Error, Result};

/// The decoded parameters of one request, query string and form body merged.
#[derive(Clone, Debug, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Decodes a raw query string and a form body. Body values win over query values,
    /// which matches how a form POST with a stray query string is treated by AWS.
    pub fn parse(query: &str, body: &[u8]) -> Params {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            map.insert(k.into_owned(), v.into_owned());
        }
        for (k, v) in form_urlencoded::parse(body) {
            map.insert(k.into_owned(), v.into_owned());
        }
        Params { map }
    }

    /// Builds parameters from pairs (tests and internal callers).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Params {
        Params {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// All parameter names, for callers that reject unknown ones.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(|k| k.as_str())
    }

    /// All (name, value) pairs, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(|s| s.as_str())
    }

    /// A required parameter; absent or empty is `MissingParameter`.
    pub fn required(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::MissingParameter(key.to_string())),
        }
    }

    /// An optional boolean (`true`/`false`, any case as botocore sends lowercase).
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Error::invalid_value(format!(
                "Invalid value '{v}' for {key}. Expected a boolean (true or false)."
            ))),
        }
    }

    /// An optional integer.
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                Error::invalid_value(format!(
                    "Invalid value '{v}' for {key}. Expected an integer."
                ))
            }),
        }
    }

    /// True when the request asks for a dry run.
    pub fn dry_run(&self) -> Result<bool> {
        Ok(self.bool("DryRun")?.unwrap_or(false))
    }

    /// A flattened list `Prefix.1`, `Prefix.2`, … in index order. Gaps are tolerated
    /// (EC2 does), non-numeric suffixes belong to other parameters and are skipped.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<(u32, String)> = self
            .with_prefix(prefix)
            .filter_map(|(rest, v)| rest.parse::<u32>().ok().map(|n| (n, v.to_string())))
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// A flattened list of structures `Prefix.N.Member…`, each returned as its own
    /// `Params` holding the members with the `Prefix.N.` removed, in index order.
    pub fn structs(&self, prefix: &str) -> Vec<Params> {
        let mut groups: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (rest, v) in self.with_prefix(prefix) {
            if let Some((n, member)) = rest.split_once('.') {
                if let Ok(n) = n.parse::<u32>() {
                    groups
                        .entry(n)
                        .or_default()
                        .insert(member.to_string(), v.to_string());
                }
            }
        }
        groups.into_values().map(|map| Params { map }).collect()
    }

    /// The members of a structure parameter `Prefix.Member`, as their own `Params`.
    pub fn sub(&self, prefix: &str) -> Params {
        Params {
            map: self
                .with_prefix(prefix)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Decodes a base64 blob parameter (botocore base64-encodes blobs and user data).
    pub fn base64(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => decode_base64(v)
                .map(Some)
                .ok_or_else(|| Error::invalid_value(format!("Invalid BASE64 encoding of {key}"))),
        }
    }

    fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        let dotted = format!("{prefix}.");
        self.map
            .range(dotted.clone()..)
            .take_while(move |(k, _)| k.starts_with(&dotted))
            .map(move |(k, v)| (&k[prefix.len() + 1..], v.as_str()))
    }
}

pub use strato_common::base64::{decode_base64, encode_base64};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_lists_and_structures() {
        let p = Params::parse(
            "",
            b"Action=DescribeInstances&InstanceId.2=i-b&InstanceId.1=i-a&InstanceId.10=i-c\
              &Filter.1.Name=tag%3AEnv&Filter.1.Value.1=prod&Filter.1.Value.2=dev\
              &Filter.2.Name=instance-type&Filter.2.Value.1=t3.micro&Placement.AvailabilityZone=az1",
        );
        assert_eq!(p.get("Action"), Some("DescribeInstances"));
        assert_eq!(p.list("InstanceId"), vec!["i-a", "i-b", "i-c"]);
        let filters = p.structs("Filter");
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].get("Name"), Some("tag:Env"));
        assert_eq!(filters[0].list("Value"), vec!["prod", "dev"]);
        assert_eq!(p.sub("Placement").get("AvailabilityZone"), Some("az1"));
        assert!(p.list("InstanceIdX").is_empty());
    }

    #[test]
    fn typed_getters_validate() {
        let p = Params::from_pairs([("A", "TRUE"), ("B", "x"), ("N", "12"), ("M", "1.5")]);
        assert_eq!(p.bool("A").unwrap(), Some(true));
        assert!(matches!(p.bool("B"), Err(Error::InvalidParameterValue(_))));
        assert_eq!(p.int("N").unwrap(), Some(12));
        assert!(p.int("M").is_err());
        assert!(matches!(p.required("Z"), Err(Error::MissingParameter(_))));
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64("!!!").is_none());
    }

    proptest! {
        #[test]
        fn parse_never_panics(q in ".{0,200}", b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let p = Params::parse(&q, &b);
            let _ = p.structs("Filter");
            let _ = p.list("InstanceId");
            let _ = p.bool("DryRun");
        }

        #[test]
        fn lists_round_trip(items in proptest::collection::vec("[a-z0-9-]{1,12}", 0..30)) {
            let pairs: Vec<(String, String)> = items.iter().enumerate()
                .map(|(i, v)| (format!("Item.{}", i + 1), v.clone())).collect();
            let p = Params::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            prop_assert_eq!(p.list("Item"), items);
        }
    }
}
