//! Generation of the typed EC2 wire layer (`crates/ec2-wire/src/generated/`):
//!
//! - `types.rs`: a Rust structure for every structure shape reachable from a served
//!   operation's input or output, an enum for every enum shape (but the open ones),
//!   `Decode` for what requests carry and `Encode` for what responses carry;
//! - `service.rs`: the `Ec2Service` trait, one method per served operation from its
//!   typed request to its typed result, and `dispatch`, which decodes, calls and
//!   encodes.
//!
//! Field shapes follow the direction a structure travels in. A structure only requests
//! carry has its required members as plain values and its lists as `Vec` (EC2's Query
//! protocol cannot send an empty list); a structure responses carry (or both) has
//! every member optional, so a handler states exactly which elements the answer holds.

use crate::{snake, Generator, Res, EXTRA_ENUM_VALUES, OPEN_ENUMS, PRERENDERED};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Rust keywords a member's snake-case name may collide with.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
    "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "self",
    "static", "struct", "super", "trait", "true", "try", "type", "typeof", "unsafe", "unsized",
    "use", "virtual", "where", "while", "yield",
];

/// The field name of member `name`.
pub fn field(name: &str) -> String {
    let s = snake(name);
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

/// The variant name of enum value `value`: its alphanumeric runs, each capitalised
/// (`ipv4-prefix` → `Ipv4Prefix`, `MANUAL` → `Manual`), `V` before a leading digit.
fn variant(value: &str) -> String {
    let mut out = String::new();
    for part in value.split(|c: char| !c.is_ascii_alphanumeric()) {
        if part.is_empty() {
            continue;
        }
        let all_upper = part.len() > 1 && !part.chars().any(|c| c.is_ascii_lowercase());
        let mut chars = part.chars();
        if let Some(f) = chars.next() {
            out.push(f.to_ascii_uppercase());
            for c in chars {
                out.push(if all_upper { c.to_ascii_lowercase() } else { c });
            }
        }
    }
    if out.is_empty() {
        out.push_str("Empty");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

impl Generator<'_> {
    fn output_of(&self, op: &str) -> Option<&str> {
        self.ops[op]
            .get("output")
            .and_then(|o| o.get("shape"))
            .and_then(|s| s.as_str())
    }

    /// Shapes reachable from `roots`.
    fn reach(&self, roots: Vec<String>) -> Res<BTreeSet<String>> {
        let mut seen = BTreeSet::new();
        let mut todo = roots;
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            let s = self.shape(&n)?;
            if let Some(m) = s.get("members").and_then(|m| m.as_object()) {
                for v in m.values() {
                    todo.push(v["shape"].as_str().unwrap_or("").to_string());
                }
            }
            if let Some(m) = s.get("member") {
                todo.push(m["shape"].as_str().unwrap_or("").to_string());
            }
        }
        Ok(seen)
    }

    fn is_enum(s: &Map<String, Value>, name: &str) -> bool {
        s.contains_key("enum") && !OPEN_ENUMS.contains(&name)
    }

    /// The Rust type of a value of shape `name`.
    fn rust_type(&self, name: &str) -> Res<String> {
        let s = self.shape(name)?;
        Ok(match s["type"].as_str().unwrap_or("") {
            "structure" => name.to_string(),
            "list" => format!(
                "Vec<{}>",
                self.rust_type(s["member"]["shape"].as_str().unwrap_or(""))?
            ),
            "string" if Self::is_enum(s, name) => name.to_string(),
            "string" => "String".into(),
            "integer" => "i32".into(),
            "long" => "i64".into(),
            "double" | "float" => "f64".into(),
            "boolean" => "bool".into(),
            "timestamp" => "DateTime".into(),
            "blob" => "Blob".into(),
            other => return Err(format!("{name}: unsupported shape type {other}")),
        })
    }

    /// Fails when a structure reaches itself: the generated types hold their members
    /// by value, so a cycle would need boxing, which no served shape needs yet.
    fn check_acyclic(&self, shapes: &BTreeSet<String>) -> Res<()> {
        fn visit(
            g: &Generator<'_>,
            n: &str,
            stack: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Res<()> {
            if done.contains(n) {
                return Ok(());
            }
            if stack.iter().any(|s| s == n) {
                return Err(format!(
                    "shape cycle {} -> {n}: teach xtask/src/wire_types.rs to box it",
                    stack.join(" -> ")
                ));
            }
            stack.push(n.to_string());
            let s = g.shape(n)?;
            if let Some(m) = s.get("members").and_then(|m| m.as_object()) {
                for v in m.values() {
                    visit(g, v["shape"].as_str().unwrap_or(""), stack, done)?;
                }
            }
            if let Some(m) = s.get("member") {
                visit(g, m["shape"].as_str().unwrap_or(""), stack, done)?;
            }
            stack.pop();
            done.insert(n.to_string());
            Ok(())
        }
        let mut done = BTreeSet::new();
        for n in shapes {
            visit(self, n, &mut vec![], &mut done)?;
        }
        Ok(())
    }

    /// `types.rs`.
    pub fn wire_types(&self) -> Res<String> {
        let ins = self.reach(
            self.served
                .keys()
                .filter_map(|op| self.input_of(op).map(str::to_string))
                .collect(),
        )?;
        let outs = self.reach(
            self.served
                .keys()
                .filter_map(|op| self.output_of(op).map(str::to_string))
                .collect(),
        )?;
        let all: BTreeSet<String> = ins.union(&outs).cloned().collect();
        self.check_acyclic(&all)?;
        let mut o = String::from(crate::HEADER);
        o.push_str(
            "//! The typed requests and responses of the served EC2 operations, one Rust type\n\
             //! per structure and enum shape of the model they reach (see `crate::codec`).\n\n\
             #![allow(clippy::large_enum_variant, clippy::struct_excessive_bools)]\n\n\
             use crate::codec::{bad_enum, Blob, DateTime, Decode, Encode, Node};\n\
             use crate::xml::XmlWriter;\n\
             use strato_common::Result;\n\n",
        );
        for name in &all {
            let s = self.shape(name)?;
            match s["type"].as_str().unwrap_or("") {
                "structure" => {
                    self.gen_struct(&mut o, name, s, ins.contains(name), outs.contains(name))?
                }
                "string" if Self::is_enum(s, name) => Self::gen_enum(&mut o, name, s)?,
                _ => {}
            }
        }
        Ok(o)
    }

    fn gen_struct(
        &self,
        o: &mut String,
        name: &str,
        s: &Map<String, Value>,
        decoded: bool,
        encoded: bool,
    ) -> Res<()> {
        let in_only = decoded && !encoded;
        let required: BTreeSet<&str> = s
            .get("required")
            .and_then(|r| r.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let empty = Map::new();
        let members = s
            .get("members")
            .and_then(|m| m.as_object())
            .unwrap_or(&empty);
        struct F {
            field: String,
            ty: String,
            /// `list`, `req`, `opt_list` or `opt`.
            how: &'static str,
            wire_in: String,
            wire_out: String,
            item: String,
            list: bool,
        }
        let mut fields = vec![];
        for (mn, mv) in members {
            let shape = mv["shape"].as_str().unwrap_or("");
            let ms = self.shape(shape)?;
            let list = ms["type"] == "list";
            let inner = self.rust_type(shape)?;
            let (ty, how) = if in_only && list {
                (inner, "list")
            } else if in_only && required.contains(mn.as_str()) {
                (inner, "req")
            } else if list {
                (format!("Option<{inner}>"), "opt_list")
            } else {
                (format!("Option<{inner}>"), "opt")
            };
            let wire_out = mv
                .get("locationName")
                .and_then(|l| l.as_str())
                .unwrap_or(mn)
                .to_string();
            let item = if list {
                ms["member"]
                    .get("locationName")
                    .and_then(|l| l.as_str())
                    .unwrap_or("item")
                    .to_string()
            } else {
                String::new()
            };
            fields.push(F {
                field: field(mn),
                ty,
                how,
                wire_in: Self::wire_name(mn, mv),
                wire_out,
                item,
                list,
            });
        }
        let derive = if in_only {
            "#[derive(Clone, Debug, PartialEq)]"
        } else {
            "#[derive(Clone, Debug, Default, PartialEq)]"
        };
        writeln!(
            o,
            "/// The model's `{name}`.\n{derive}\npub struct {name} {{"
        )
        .map_err(se)?;
        for f in &fields {
            writeln!(o, "    pub {}: {},", f.field, f.ty).map_err(se)?;
        }
        let prerendered = encoded && PRERENDERED.contains(&name);
        if prerendered {
            o.push_str(
                "    /// The content as this type's encoder writes it, when a handler kept it\n                 \x20   /// ([`crate::codec::render`]): written as it is, the fields above unread.\n                 \x20   pub prerendered: Option<bytes::Bytes>,\n",
            );
        }
        o.push_str("}\n\n");
        if decoded {
            let var = if fields.is_empty() { "_n" } else { "n" };
            writeln!(
                o,
                "impl Decode for {name} {{\n    fn decode({var}: &Node<'_>) -> Result<Self> {{\n        Ok({name} {{"
            )
            .map_err(se)?;
            for f in &fields {
                writeln!(o, "            {}: n.{}({:?})?,", f.field, f.how, f.wire_in)
                    .map_err(se)?;
            }
            if prerendered {
                o.push_str("            prerendered: None,\n");
            }
            o.push_str("        })\n    }\n}\n\n");
        }
        if encoded {
            let var = if fields.is_empty() { "_w" } else { "w" };
            writeln!(
                o,
                "impl Encode for {name} {{\n    fn encode(&self, {var}: &mut XmlWriter) {{"
            )
            .map_err(se)?;
            if prerendered {
                o.push_str("        if let Some(p) = &self.prerendered {\n            w.shared(p);\n            return;\n        }\n");
            }
            for f in &fields {
                let (open, close) = (format!("<{}>", f.wire_out), format!("</{}>", f.wire_out));
                if f.list {
                    writeln!(
                        o,
                        "        w.member_list(({open:?}, {close:?}), ({:?}, {:?}), &self.{});",
                        format!("<{}>", f.item),
                        format!("</{}>", f.item),
                        f.field
                    )
                    .map_err(se)?;
                } else {
                    writeln!(
                        o,
                        "        w.member({open:?}, {close:?}, &self.{});",
                        f.field
                    )
                    .map_err(se)?;
                }
            }
            o.push_str("    }\n}\n\n");
        }
        Ok(())
    }

    fn gen_enum(o: &mut String, name: &str, s: &Map<String, Value>) -> Res<()> {
        let mut values: Vec<&str> = s["enum"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        for (e, v) in EXTRA_ENUM_VALUES {
            if *e == name && !values.contains(v) {
                values.push(v);
            }
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut variants = vec![];
        for v in &values {
            let mut id = variant(v);
            let n = seen.entry(id.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                id = format!("{id}V{n}");
            }
            variants.push((id, *v));
        }
        writeln!(
            o,
            "/// The model's `{name}` enum.\n#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]\npub enum {name} {{"
        )
        .map_err(se)?;
        for (id, v) in &variants {
            writeln!(o, "    /// `{v}`\n    {id},").map_err(se)?;
        }
        writeln!(
            o,
            "}}\n\nimpl {name} {{\n    /// Every value, in the model's order (and any EC2 answers beyond it).\n    pub const VALUES: &'static [&'static str] = &[{}];\n\n    /// The value on the wire.\n    pub fn as_str(self) -> &'static str {{\n        match self {{",
            values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")
        )
        .map_err(se)?;
        for (id, v) in &variants {
            writeln!(o, "            {name}::{id} => {v:?},").map_err(se)?;
        }
        writeln!(
            o,
            "        }}\n    }}\n\n    /// The variant of a wire value.\n    pub fn from_wire(s: &str) -> Option<Self> {{\n        Some(match s {{"
        )
        .map_err(se)?;
        for (id, v) in &variants {
            writeln!(o, "            {v:?} => {name}::{id},").map_err(se)?;
        }
        writeln!(
            o,
            "            _ => return None,\n        }})\n    }}\n}}\n\n\
             impl Decode for {name} {{\n    fn decode(n: &Node<'_>) -> Result<Self> {{\n        Self::from_wire(n.text()).ok_or_else(|| bad_enum(n, Self::VALUES))\n    }}\n}}\n\n\
             impl Encode for {name} {{\n    fn encode(&self, w: &mut XmlWriter) {{\n        w.raw(self.as_str());\n    }}\n}}\n\n\
             impl std::fmt::Display for {name} {{\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n        f.write_str(self.as_str())\n    }}\n}}\n"
        )
        .map_err(se)?;
        Ok(())
    }

    /// `service.rs`.
    pub fn wire_service(&self) -> Res<String> {
        let mut o = String::from(crate::HEADER);
        o.push_str(
            "//! One method per served EC2 operation, from its typed request to its typed\n\
             //! result, and the dispatch that decodes, calls and encodes.\n\n\
             use crate::codec::{respond, respond_return, Decode, Node};\n\
             use crate::types::*;\n\
             use crate::xml::Rope;\n\
             use strato_common::Result;\n\
             use strato_ec2_model::Operation;\n\n\
             /// The operations Strato serves, typed: `served.toml` names them, the build\n\
             /// fails until each has its method. Requests arrive checked against the model\n\
             /// (unknown, unhonoured and malformed parameters never reach a method).\n\
             pub trait Ec2Service {\n\
             \x20   /// What every method receives beside its request (caller, region, request id,\n\
             \x20   /// dry run).\n\
             \x20   type Context: ?Sized;\n",
        );
        let mut arms = String::new();
        for op in self.served.keys() {
            let input = self
                .input_of(op)
                .ok_or(format!("{op} has no input shape; teach wire_types.rs"))?;
            let output = self.output_of(op);
            let out_ty = output.unwrap_or("()");
            writeln!(
                o,
                "    fn {}(&self, cx: &Self::Context, req: {input}) -> Result<{out_ty}>;",
                snake(op)
            )
            .map_err(se)?;
            let encode = if output.is_some() {
                format!("respond(Operation::{op}, request_id, &out)")
            } else {
                format!("{{ let () = out; respond_return(Operation::{op}, request_id) }}")
            };
            writeln!(
                arms,
                "        Operation::{op} => {input}::decode(params)\n            .and_then(|req| s.{}(cx, req))\n            .map(|out| {encode}),",
                snake(op)
            )
            .map_err(se)?;
        }
        o.push_str("}\n\n");
        o.push_str(
            "/// Decodes `params` into `op`'s request, runs its method and encodes the answer;\n\
             /// `None` when Strato does not serve `op`.\n\
             pub fn dispatch<S: Ec2Service + ?Sized>(\n    s: &S,\n    op: Operation,\n    cx: &S::Context,\n    params: &Node<'_>,\n    request_id: &str,\n) -> Option<Result<Rope>> {\n    Some(match op {\n",
        );
        o.push_str(&arms);
        o.push_str("        _ => return None,\n    })\n}\n");
        Ok(o)
    }
}

fn se(e: std::fmt::Error) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_and_fields() {
        assert_eq!(variant("ipv4-prefix"), "Ipv4Prefix");
        assert_eq!(variant("MANUAL"), "Manual");
        assert_eq!(variant("shutting-down"), "ShuttingDown");
        assert_eq!(variant("1"), "V1");
        assert_eq!(variant("io2"), "Io2");
        assert_eq!(field("Type"), "r#type");
        assert_eq!(field("DryRun"), "dry_run");
    }
}
