//! The runtime of the generated request and response types ([`crate::types`]).
//!
//! **Requests.** A request's parameters are first walked against the model's schema
//! ([`crate::validate`]), then arranged as a [`Node`] tree by their dotted names
//! (`Filter.2.Value.1` → `Filter` → `2` → `Value` → `1`) and decoded into the
//! generated structure of the operation by [`Decode`]: a structure member is the child
//! named by its wire name, a list is the children numbered 1, 2, … in numeric order
//! (EC2 tolerates gaps), a scalar is the node's value.
//!
//! **Responses.** Generated output structures implement [`Encode`], which writes their
//! members (never the element around them) in EC2's XML: each present member as
//! `<locationName>…</locationName>`, a list as `<name><item>…</item></name>`, an absent
//! (`None`) member not at all.

use crate::xml::{escape_into, Rope, XmlWriter};
use crate::EC2_XMLNS;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use strato_common::time_fmt::{parse_rfc3339_ms, write_ec2_timestamp};
use strato_common::{Error, Result};
use strato_ec2_model::Operation;

/// One node of a request's parameter tree: the value given for its exact name, if any,
/// and the parameters below it.
#[derive(Debug, Default)]
pub struct Node<'a> {
    /// The full dotted name of this node (`Filter.2`), for error messages.
    path: String,
    value: Option<&'a str>,
    children: BTreeMap<&'a str, Node<'a>>,
}

impl<'a> Node<'a> {
    /// Builds the tree of `(name, value)` pairs (a request's parameters).
    pub fn build(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Node<'a> {
        let mut root = Node::default();
        for (key, value) in pairs {
            let mut node = &mut root;
            for seg in key.split('.') {
                let path = if node.path.is_empty() {
                    seg.to_string()
                } else {
                    format!("{}.{seg}", node.path)
                };
                node = node.children.entry(seg).or_insert_with(|| Node {
                    path,
                    ..Node::default()
                });
            }
            node.value = Some(value);
        }
        root
    }

    /// The full dotted name of this node.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value given for this node (empty when only members below it were given).
    pub fn text(&self) -> &'a str {
        self.value.unwrap_or("")
    }

    /// The child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node<'a>> {
        self.children.get(name)
    }

    /// The numbered children (`Name.1`, `Name.2`, …) in numeric order; names that are
    /// not numbers belong to nothing a list holds and are skipped (the schema walk has
    /// refused them already).
    fn items(&self) -> Vec<&Node<'a>> {
        let mut items: Vec<(u64, &Node<'a>)> = self
            .children
            .iter()
            .filter_map(|(k, n)| k.parse::<u64>().ok().map(|i| (i, n)))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, n)| n).collect()
    }

    /// An optional member.
    pub fn opt<T: Decode>(&self, name: &str) -> Result<Option<T>> {
        self.child(name).map(T::decode).transpose()
    }

    /// A required member: absent, or given as an empty value, is `MissingParameter`
    /// naming it (as EC2 answers `VpcId=`).
    pub fn req<T: Decode>(&self, name: &str) -> Result<T> {
        match self.child(name) {
            Some(n) if !(n.children.is_empty() && n.text().is_empty()) => T::decode(n),
            _ => Err(Error::MissingParameter(self.join(name))),
        }
    }

    /// A list member (`Name.N`); empty when absent.
    pub fn list<T: Decode>(&self, name: &str) -> Result<Vec<T>> {
        match self.child(name) {
            Some(n) => n.items().into_iter().map(T::decode).collect(),
            None => Ok(Vec::new()),
        }
    }

    /// A list member of a structure that is also encoded: `None` when absent.
    pub fn opt_list<T: Decode>(&self, name: &str) -> Result<Option<Vec<T>>> {
        match self.child(name) {
            Some(n) => n
                .items()
                .into_iter()
                .map(T::decode)
                .collect::<Result<_>>()
                .map(Some),
            None => Ok(None),
        }
    }

    fn join(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// `InvalidParameterValue` for this node's value.
    pub fn invalid(&self, expected: &str) -> Error {
        Error::invalid_value(format!(
            "Invalid value '{}' for {}. {expected}",
            crate::validate::echo(self.text()),
            self.path
        ))
    }
}

/// A value decoded from a node of a request's parameter tree.
pub trait Decode: Sized {
    fn decode(node: &Node<'_>) -> Result<Self>;
}

/// A value written into a response. Scalars write their text; structures write their
/// members (the caller writes the element around them).
pub trait Encode {
    fn encode(&self, w: &mut XmlWriter);
}

impl Decode for String {
    fn decode(node: &Node<'_>) -> Result<Self> {
        Ok(node.text().to_string())
    }
}

impl Decode for bool {
    fn decode(node: &Node<'_>) -> Result<Self> {
        let v = node.text();
        if v.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if v.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(node.invalid("Expected a boolean (true or false)."))
        }
    }
}

macro_rules! decode_number {
    ($($t:ty => $what:literal),*) => {$(
        impl Decode for $t {
            fn decode(node: &Node<'_>) -> Result<Self> {
                node.text().trim().parse().map_err(|_| node.invalid($what))
            }
        }
    )*};
}
decode_number!(i32 => "Expected an integer.", i64 => "Expected an integer.", f64 => "Expected a number.");

/// A timestamp (the model's `timestamp`): milliseconds since the Unix epoch, written as
/// EC2 writes them (`2026-11-26T06:26:20.000Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub i64);

impl Decode for DateTime {
    fn decode(node: &Node<'_>) -> Result<Self> {
        parse_rfc3339_ms(node.text())
            .map(DateTime)
            .ok_or_else(|| node.invalid("Expected an ISO 8601 timestamp."))
    }
}

impl Encode for DateTime {
    fn encode(&self, w: &mut XmlWriter) {
        write_ec2_timestamp(w.buf_mut(), self.0);
    }
}

/// A blob (the model's `blob`): bytes, base64 on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Decode for Blob {
    fn decode(node: &Node<'_>) -> Result<Self> {
        crate::params::decode_base64(node.text())
            .map(Blob)
            .ok_or_else(|| {
                Error::invalid_value(format!("Invalid BASE64 encoding of {}", node.path))
            })
    }
}

impl Encode for Blob {
    fn encode(&self, w: &mut XmlWriter) {
        w.raw(&crate::params::encode_base64(&self.0));
    }
}

impl Encode for String {
    fn encode(&self, w: &mut XmlWriter) {
        escape_into(w.buf_mut(), self);
    }
}

impl Encode for bool {
    fn encode(&self, w: &mut XmlWriter) {
        w.raw(if *self { "true" } else { "false" });
    }
}

macro_rules! encode_integer {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, w: &mut XmlWriter) {
                w.raw(itoa::Buffer::new().format(*self));
            }
        }
    )*};
}
encode_integer!(i32, i64);

impl Encode for f64 {
    fn encode(&self, w: &mut XmlWriter) {
        use std::fmt::Write as _;
        let _ = write!(w.buf_mut(), "{self}");
    }
}

impl XmlWriter {
    /// `<tag>value</tag>` when the member is present. The generated encoders pass the
    /// whole start and end tags (`"<instanceId>"`, `"</instanceId>"`) as literals: a
    /// page of instances writes a few hundred thousand elements.
    pub fn member<T: Encode>(&mut self, open: &str, close: &str, value: &Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.raw(open);
            v.encode(self);
            self.raw(close);
        }
        self
    }

    /// `<tag><item>…</item>…</tag>` when the list is present (an empty list is an
    /// empty element, which botocore reads as an empty list); `item` is the start and
    /// end tag of each element.
    pub fn member_list<T: Encode>(
        &mut self,
        (open, close): (&str, &str),
        (item_open, item_close): (&str, &str),
        list: &Option<Vec<T>>,
    ) -> &mut Self {
        if let Some(list) = list {
            self.raw(open);
            for v in list {
                self.raw(item_open);
                v.encode(self);
                self.raw(item_close);
            }
            self.raw(close);
        }
        self
    }
}

/// The size of the last answer of each operation, so the next one is written into one
/// allocation of about its size (a 1,000-instance page is several megabytes; growing
/// a buffer to that by doubling copies it a dozen times).
static LAST_SIZE: [AtomicUsize; Operation::ALL.len()] =
    [const { AtomicUsize::new(0) }; Operation::ALL.len()];

/// A success document for `op` whose members are `out`'s.
pub fn respond<T: Encode>(op: Operation, request_id: &str, out: &T) -> Rope {
    let slot = &LAST_SIZE[op as usize];
    let capacity = (slot.load(Ordering::Relaxed) + 256).max(1024);
    let w = crate::xml::success_writer(op.name(), EC2_XMLNS, request_id, capacity, |w| {
        out.encode(w)
    });
    // The writer's own text is what the next answer's buffer holds (kept pieces are
    // shared, not copied in).
    slot.store(w.own_len(), Ordering::Relaxed);
    w.into_rope()
}

/// `value`'s content as its encoder writes it, to keep and hand back as a structure's
/// `prerendered` member (see `xtask`'s `PRERENDERED`).
pub fn render<T: Encode>(value: &T) -> bytes::Bytes {
    let mut w = XmlWriter::with_capacity(4096);
    value.encode(&mut w);
    bytes::Bytes::from(w.into_string())
}

/// The answer of an operation the model gives no output: EC2's `<return>true</return>`.
pub fn respond_return(op: Operation, request_id: &str) -> Rope {
    Rope::from(crate::xml::success(op.name(), request_id, |w| {
        w.bool("return", true);
    }))
}

/// The error for an enum value outside the model's list (the schema walk catches these
/// first; this keeps decoding total).
pub fn bad_enum(node: &Node<'_>, values: &[&str]) -> Error {
    node.invalid(&format!("Valid values: {}.", values.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_orders_list_items_numerically() {
        let pairs = [
            ("InstanceId.10", "c"),
            ("InstanceId.2", "b"),
            ("InstanceId.1", "a"),
            ("Filter.1.Name", "x"),
            ("Filter.1.Value.1", "v"),
        ];
        let root = Node::build(pairs.iter().copied());
        let ids: Vec<String> = root.list("InstanceId").unwrap();
        assert_eq!(ids, ["a", "b", "c"]);
        let f = root.child("Filter").unwrap().child("1").unwrap();
        assert_eq!(f.path(), "Filter.1");
        assert_eq!(f.child("Name").unwrap().text(), "x");
        assert!(matches!(
            f.req::<String>("Nope"),
            Err(Error::MissingParameter(m)) if m == "Filter.1.Nope"
        ));
    }

    #[test]
    fn scalars_decode_and_refuse() {
        let root = Node::build([
            ("N", "12"),
            ("B", "TRUE"),
            ("X", "x"),
            ("T", "2026-01-02T03:04:05Z"),
        ]);
        assert_eq!(root.req::<i32>("N").unwrap(), 12);
        assert!(root.req::<bool>("B").unwrap());
        assert!(matches!(
            root.req::<i32>("X"),
            Err(Error::InvalidParameterValue(_))
        ));
        assert!(root.req::<bool>("X").is_err());
        assert_eq!(root.req::<DateTime>("T").unwrap().0, 1_767_323_045_000);
        assert_eq!(root.opt::<String>("Missing").unwrap(), None);
    }

    #[test]
    fn members_encode_only_when_present() {
        let mut w = XmlWriter::default();
        let item = ("<item>", "</item>");
        w.member("<a>", "</a>", &Some("x<y".to_string()))
            .member::<i32>("<b>", "</b>", &None)
            .member("<c>", "</c>", &Some(-7))
            .member_list(("<d>", "</d>"), item, &Some(vec![true, false]))
            .member_list::<bool>(("<e>", "</e>"), item, &None)
            .member_list::<bool>(("<f>", "</f>"), item, &Some(vec![]));
        assert_eq!(
            w.into_string(),
            "<a>x&lt;y</a><c>-7</c><d><item>true</item><item>false</item></d><f></f>"
        );
    }
}
