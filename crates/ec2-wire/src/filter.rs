//! Decoding `Filter.N.Name` / `Filter.N.Value.M` into the domain's [`FilterSet`]
//! (whose semantics live in `strato_common::filter`).

use crate::params::Params;
use strato_common::filter::is_tag_filter;
pub use strato_common::filter::{wildcard_match, Filter, FilterSet};
use strato_common::{Error, Result};

/// The most filter values one request may carry, summed over its filters (EC2's limit;
/// beyond it EC2 answers `FilterLimitExceeded` rather than spend the CPU).
pub const MAX_FILTER_VALUES: usize = 200;

/// Decodes `Filter.N` (or another list prefix) and checks each name against `allowed`.
/// Tag filters are allowed when `tags` is true.
pub fn decode_filters(p: &Params, prefix: &str, allowed: &[&str], tags: bool) -> Result<FilterSet> {
    let mut filters = Vec::new();
    let mut total = 0usize;
    for (i, f) in p.structs(prefix).into_iter().enumerate() {
        let name = f
            .get("Name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::MissingParameter(format!("{prefix}.{}.Name", i + 1)))?
            .to_string();
        let known =
            allowed.contains(&name.as_str()) || (tags && is_tag_filter(&name) && name != "tag:");
        if !known {
            return Err(Error::invalid_value(format!(
                "The filter '{name}' is invalid"
            )));
        }
        let values = f.list("Value");
        if values.is_empty() {
            return Err(Error::invalid_value(format!(
                "The filter '{name}' requires at least one value"
            )));
        }
        total += values.len();
        if total > MAX_FILTER_VALUES {
            return Err(Error::FilterLimitExceeded(format!(
                "The maximum number of filter values specified on a single call is {MAX_FILTER_VALUES}"
            )));
        }
        filters.push(Filter { name, values });
    }
    Ok(FilterSet { filters })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> Result<FilterSet> {
        decode_filters(
            &Params::from_pairs(pairs.iter().copied()),
            "Filter",
            &["instance-type", "instance-state-name"],
            true,
        )
    }

    #[test]
    fn and_of_ors() {
        let f = set(&[
            ("Filter.1.Name", "instance-type"),
            ("Filter.1.Value.1", "t3.micro"),
            ("Filter.1.Value.2", "m5.*"),
            ("Filter.2.Name", "tag:Env"),
            ("Filter.2.Value.1", "prod"),
        ])
        .unwrap();
        let tags = vec![("Env".to_string(), "prod".to_string())];
        assert!(f.matches(&tags, |_| vec!["m5.large".into()]));
        assert!(!f.matches(&tags, |_| vec!["c5.large".into()]));
        assert!(!f.matches(&[], |_| vec!["t3.micro".into()]));
    }

    #[test]
    fn rejects_unknown_and_empty() {
        assert!(matches!(
            set(&[("Filter.1.Name", "bogus"), ("Filter.1.Value.1", "x")]),
            Err(Error::InvalidParameterValue(m)) if m.contains("bogus")
        ));
        assert!(set(&[("Filter.1.Name", "instance-type")]).is_err());
        assert!(set(&[("Filter.1.Value.1", "x")]).is_err());
        let f = set(&[("Filter.1.Name", "tag-key"), ("Filter.1.Value.1", "Na*")]).unwrap();
        assert!(f.matches(&[("Name".into(), "x".into())], |_| vec![]));
    }

    #[test]
    fn caps_filter_values() {
        let mut pairs = vec![("Filter.1.Name".to_string(), "instance-type".to_string())];
        for i in 1..=MAX_FILTER_VALUES + 1 {
            pairs.push((format!("Filter.1.Value.{i}"), format!("t{i}*")));
        }
        let p = Params::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let r = decode_filters(&p, "Filter", &["instance-type"], false);
        assert!(matches!(r, Err(Error::FilterLimitExceeded(m)) if m.contains("200")));
        pairs.pop();
        let p = Params::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert!(decode_filters(&p, "Filter", &["instance-type"], false).is_ok());
    }
}
