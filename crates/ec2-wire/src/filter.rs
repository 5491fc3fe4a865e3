//! EC2 filter semantics.
//!
//! A request carries `Filter.N.Name` / `Filter.N.Value.M`. A resource matches when every
//! filter matches (AND) and a filter matches when any of its values matches any of the
//! resource's values for that name (OR). Values may use `*` (any run of characters) and
//! `?` (exactly one character); a backslash escapes either. Matching is case-sensitive.
//! `tag:<Key>` matches the value of tag `<Key>`, `tag-key` any tag key, `tag-value` any
//! tag value. Names a resource type does not know are rejected, as EC2 does.

use crate::params::Params;
use strato_common::{Error, Result};

/// One decoded filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// All filters of one request, validated against the names a resource type supports.
#[derive(Clone, Debug, Default)]
pub struct FilterSet {
    pub filters: Vec<Filter>,
}

/// Whether a filter name is a tag filter the generic tag logic answers.
fn is_tag_filter(name: &str) -> bool {
    name.starts_with("tag:") || name == "tag-key" || name == "tag-value"
}

impl FilterSet {
    /// Decodes `Filter.N` (or another list prefix) and checks each name against `allowed`.
    /// Tag filters are allowed when `tags` is true.
    pub fn from_params(p: &Params, prefix: &str, allowed: &[&str], tags: bool) -> Result<Self> {
        let mut filters = Vec::new();
        for (i, f) in p.structs(prefix).into_iter().enumerate() {
            let name = f
                .get("Name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| Error::MissingParameter(format!("{prefix}.{}.Name", i + 1)))?
                .to_string();
            let known = allowed.contains(&name.as_str())
                || (tags && is_tag_filter(&name) && name != "tag:");
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
            filters.push(Filter { name, values });
        }
        Ok(FilterSet { filters })
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The values given for one filter name, if that filter is present (lets a caller
    /// narrow a database query before the full match).
    pub fn values_of(&self, name: &str) -> Option<&[String]> {
        self.filters
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.values.as_slice())
    }

    /// True when the resource passes every filter. `field` answers the resource's values
    /// for a (non-tag) filter name; `tags` are the resource's tags.
    pub fn matches<F>(&self, tags: &[(String, String)], mut field: F) -> bool
    where
        F: FnMut(&str) -> Vec<String>,
    {
        self.filters.iter().all(|f| {
            let candidates: Vec<String> = if let Some(key) = f.name.strip_prefix("tag:") {
                tags.iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .collect()
            } else if f.name == "tag-key" {
                tags.iter().map(|(k, _)| k.clone()).collect()
            } else if f.name == "tag-value" {
                tags.iter().map(|(_, v)| v.clone()).collect()
            } else {
                field(&f.name)
            };
            f.values
                .iter()
                .any(|pat| candidates.iter().any(|c| wildcard_match(pat, c)))
        })
    }
}

/// EC2 wildcard matching: `*` any run, `?` one character, `\` escapes the next character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Lit(char),
        One,
        Any,
    }
    let mut toks = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            '*' => Tok::Any,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy match with a single backtrack point: linear for patterns without nested
    // ambiguity, and never exponential.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Lit(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("web-*", "web-1"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*b*", "abc"));
        assert!(!wildcard_match("abc", "abcd"));
        assert!(wildcard_match("a\\*c", "a*c"));
        assert!(!wildcard_match("a\\*c", "abc"));
        assert!(!wildcard_match("Web", "web"));
        assert!(wildcard_match("*.micro", "t3.micro"));
        assert!(wildcard_match("t?.*o", "t3.micro"));
    }

    fn set(pairs: &[(&str, &str)]) -> Result<FilterSet> {
        FilterSet::from_params(
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

    proptest! {
        #[test]
        fn literal_patterns_match_only_themselves(s in "[a-z0-9.-]{0,20}", t in "[a-z0-9.-]{0,20}") {
            prop_assert!(wildcard_match(&s, &s));
            prop_assert_eq!(wildcard_match(&s, &t), s == t);
        }

        #[test]
        fn star_prefix_suffix(pre in "[a-z]{0,5}", mid in "[a-z]{0,8}", suf in "[a-z]{0,5}") {
            let text = format!("{pre}{mid}{suf}");
            let pattern = format!("{pre}*{suf}");
            prop_assert!(wildcard_match(&pattern, &text));
            prop_assert!(wildcard_match("*", &text));
        }

        #[test]
        fn never_panics(p in ".{0,30}", t in ".{0,30}") {
            let _ = wildcard_match(&p, &t);
        }
    }
}
