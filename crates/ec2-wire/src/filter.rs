//! `Filter.N.Name` / `Filter.N.Value.M` (decoded as the model's `Filter`) into the domain's [`FilterSet`]
//! (whose semantics live in `strato_common::filter`).

use crate::types;
use strato_common::filter::is_tag_filter;
pub use strato_common::filter::{wildcard_match, Filter, FilterSet};
use strato_common::{Error, Result};

/// The most filter values one request may carry, summed over its filters (EC2's limit;
/// beyond it EC2 answers `FilterLimitExceeded` rather than spend the CPU).
pub const MAX_FILTER_VALUES: usize = 200;

/// The domain's [`FilterSet`] of a request's `Filter.N` list, each name checked
/// against `allowed` (tag filters too when `tags` is true) and the values counted
/// against EC2's limit. Names the list for errors (`Filter.2.Name`).
pub fn filter_set(list: &[types::Filter], allowed: &[&str], tags: bool) -> Result<FilterSet> {
    let mut filters = Vec::with_capacity(list.len());
    let mut total = 0usize;
    for (i, f) in list.iter().enumerate() {
        let name = f
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::MissingParameter(format!("Filter.{}.Name", i + 1)))?
            .to_string();
        let known =
            allowed.contains(&name.as_str()) || (tags && is_tag_filter(&name) && name != "tag:");
        if !known {
            return Err(Error::invalid_value(format!(
                "The filter '{}' is invalid",
                crate::validate::echo(&name)
            )));
        }
        if f.values.is_empty() {
            return Err(Error::invalid_value(format!(
                "The filter '{name}' requires at least one value"
            )));
        }
        total += f.values.len();
        if total > MAX_FILTER_VALUES {
            return Err(Error::FilterLimitExceeded(format!(
                "The maximum number of filter values specified on a single call is {MAX_FILTER_VALUES}"
            )));
        }
        filters.push(Filter {
            name,
            values: f.values.clone(),
        });
    }
    Ok(FilterSet { filters })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::codec::Node;

    fn decode(pairs: &[(&str, &str)]) -> Vec<types::Filter> {
        Node::build(pairs.iter().copied()).list("Filter").unwrap()
    }

    fn set(pairs: &[(&str, &str)]) -> Result<FilterSet> {
        filter_set(
            &decode(pairs),
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
        let list = |pairs: &[(String, String)]| {
            Node::build(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .list::<types::Filter>("Filter")
                .unwrap()
        };
        let r = filter_set(&list(&pairs), &["instance-type"], false);
        assert!(matches!(r, Err(Error::FilterLimitExceeded(m)) if m.contains("200")));
        pairs.pop();
        assert!(filter_set(&list(&pairs), &["instance-type"], false).is_ok());
    }
}
