//! EC2 filter semantics, as domain values the control plane evaluates.
//!
//! A resource matches when every filter matches (AND) and a filter matches when any of
//! its values matches any of the resource's values for that name (OR). Values may use
//! `*` (any run of characters) and `?` (exactly one character); a backslash escapes
//! either. Matching is case-sensitive. `tag:<Key>` matches the value of tag `<Key>`,
//! `tag-key` any tag key, `tag-value` any tag value. The wire codec decodes filters
//! (and rejects names a resource type does not know); this module knows no wire.

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
pub fn is_tag_filter(name: &str) -> bool {
    name.starts_with("tag:") || name == "tag-key" || name == "tag-value"
}

impl FilterSet {
    /// A set of filters each with one value, as a caller inside Strato builds them.
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        FilterSet {
            filters: pairs
                .iter()
                .map(|(n, v)| Filter {
                    name: n.to_string(),
                    values: vec![v.to_string()],
                })
                .collect(),
        }
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
