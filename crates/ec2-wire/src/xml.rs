//! Streaming XML encoding of EC2 responses.
//!
//! EC2's response documents are simple (elements and text, no attributes beyond the
//! root namespace), so the writer appends straight into one `String` without building a
//! tree: a 1,000-instance DescribeInstances page is encoded in a single pass.
//!
//! Text encoded before and kept (an instance item of an earlier page) is not copied in:
//! the writer notes where it goes ([`XmlWriter::shared`]) and the answer is a [`Rope`],
//! the writer's own text in slices with the kept pieces between them, which the HTTP
//! layer sends as they are. A page of 1,000 kept items is 3.6 MB that is never copied.

use crate::EC2_XMLNS;
use bytes::Bytes;
use std::fmt::Write;

/// Appends XML elements to a buffer.
#[derive(Default)]
pub struct XmlWriter {
    buf: String,
    /// Kept pieces of text, each with the length `buf` had when it was written: the
    /// document is `buf` with each piece inserted at its offset.
    shared: Vec<(usize, Bytes)>,
}

/// An encoded document: a sequence of byte pieces, some of them shared with text kept
/// elsewhere. Always UTF-8 as a whole (every piece is text a writer wrote).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rope {
    pieces: Vec<Bytes>,
    len: usize,
}

impl Rope {
    /// The document's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order, to send as they are.
    pub fn into_pieces(self) -> Vec<Bytes> {
        self.pieces
    }

    /// The document as one string (copies it; for tests and small answers).
    pub fn to_text(&self) -> String {
        let mut v = Vec::with_capacity(self.len);
        for p in &self.pieces {
            v.extend_from_slice(p);
        }
        String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl From<String> for Rope {
    fn from(s: String) -> Self {
        let len = s.len();
        Rope {
            pieces: if len == 0 {
                vec![]
            } else {
                vec![Bytes::from(s)]
            },
            len,
        }
    }
}

impl XmlWriter {
    pub fn with_capacity(n: usize) -> Self {
        XmlWriter {
            buf: String::with_capacity(n),
            shared: Vec::new(),
        }
    }

    /// Writes `piece`, text that is already XML (an item kept from an earlier answer),
    /// without copying it: the piece is shared with the document.
    pub fn shared(&mut self, piece: &Bytes) -> &mut Self {
        if !piece.is_empty() {
            self.shared.push((self.buf.len(), piece.clone()));
        }
        self
    }

    /// How much text this writer wrote itself (kept pieces not counted).
    pub fn own_len(&self) -> usize {
        self.buf.len()
    }

    /// The document written, as pieces: slices of the writer's own text with the kept
    /// pieces between them.
    pub fn into_rope(self) -> Rope {
        let len = self.buf.len() + self.shared.iter().map(|(_, p)| p.len()).sum::<usize>();
        let own = Bytes::from(self.buf);
        let mut pieces = Vec::with_capacity(2 * self.shared.len() + 1);
        let mut from = 0;
        for (at, piece) in self.shared {
            if at > from {
                pieces.push(own.slice(from..at));
            }
            pieces.push(piece);
            from = at;
        }
        if own.len() > from {
            pieces.push(own.slice(from..));
        }
        Rope { pieces, len }
    }

    /// Opens `<tag>`.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// Closes `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag>escaped text</tag>`.
    pub fn text(&mut self, tag: &str, value: &str) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.buf, value);
        self.close(tag)
    }

    /// `<tag>text</tag>` when the value is present; nothing otherwise (EC2 omits unset members).
    pub fn opt_text(&mut self, tag: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.text(tag, v);
        }
        self
    }

    /// Escaped text with no element around it (for lists of plain strings, whose
    /// items are `<item>text</item>`).
    pub fn buf_text(&mut self, value: &str) -> &mut Self {
        escape_into(&mut self.buf, value);
        self
    }

    pub fn bool(&mut self, tag: &str, value: bool) -> &mut Self {
        self.text(tag, if value { "true" } else { "false" })
    }

    pub fn num(&mut self, tag: &str, value: impl std::fmt::Display) -> &mut Self {
        self.open(tag);
        let _ = write!(self.buf, "{value}");
        self.close(tag)
    }

    /// `<tag><item>…</item>…</tag>`, each item written by `f`. An empty list is written
    /// as an empty element, which botocore reads as an empty list.
    pub fn list<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        mut f: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.open("item");
            f(self, item);
            self.close("item");
        }
        self.close(tag)
    }

    /// The `tagSet` list EC2 attaches to taggable resources; omitted when there are no tags.
    pub fn tag_set(&mut self, tags: &[(String, String)]) -> &mut Self {
        if !tags.is_empty() {
            self.list("tagSet", tags, |w, (k, v)| {
                w.text("key", k).text("value", v);
            });
        }
        self
    }

    /// Appends `s` as it is: for text that needs no escaping (numbers, enum values,
    /// timestamps).
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.buf.push_str(s);
        self
    }

    /// The buffer, for encoders that format into it directly.
    pub fn buf_mut(&mut self) -> &mut String {
        &mut self.buf
    }

    /// The document written, as one string (kept pieces copied in).
    pub fn into_string(self) -> String {
        if self.shared.is_empty() {
            return self.buf;
        }
        self.into_rope().to_text()
    }
}

/// Escapes text content and attribute values.
/// Whether XML 1.0 can carry `c` at all (its `Char` production: tab, line feed,
/// carriage return, U+0020–U+D7FF, U+E000–U+FFFD, U+10000 and above; Rust's `char`
/// already excludes surrogates).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || ((c as u32) >= 0x20 && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// The bytes [`escape_into`] must stop at: markup (`<>&`; quotes need no escaping in
/// element text, the only place values are written), the C0 controls XML cannot carry
/// (tab, line feed and carriage return pass), and 0xEF, the first byte of U+FFFE and
/// U+FFFF (and of harmless characters, which are then copied on).
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = !matches!(b, 0x09 | 0x0a | 0x0d);
        b += 1;
    }
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xEF] = true;
    t
};

/// Whether any byte of the eight in `w` may be one [`escape_into`] stops at: `<`, `>`,
/// `&`, a control character, or any byte of a multi-byte character (U+FFFE and
/// U+FFFF among them). Exact for "none"; a word it flags is checked byte by byte.
fn may_need_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of a byte of `x - ONES & !x` is set where the byte of `x` is zero
    // (and possibly above such a byte, which only happens when one is zero anyway).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let eq = |c: u8| zero(w ^ (ONES * u64::from(c)));
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    (w | below_space | eq(b'<') | eq(b'>') | eq(b'&')) & HIGH != 0
}

/// Appends `s` escaped for element text. Runs of ordinary bytes are found eight at a
/// time and copied whole: a page of 1,000 instances is megabytes of such runs.
pub fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none of them can be special.
        while let Some(word) = bytes.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            if may_need_escape(u64::from_le_bytes(w)) {
                break;
            }
            i += 8;
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        if !SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        let (replacement, len) = match b {
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'&' => ("&amp;", 1),
            // Characters XML 1.0 cannot carry at all are replaced rather than emitted
            // raw, which would make the whole document unparseable: C0 controls (one
            // byte, never inside a multi-byte char) and U+FFFE/U+FFFF (EF BF BE/BF).
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                ("\u{FFFD}", 3)
            }
            0xEF => {
                i += 1;
                continue;
            }
            _ => ("\u{FFFD}", 1),
        };
        out.push_str(&s[start..i]);
        out.push_str(replacement);
        i += len;
        start = i;
    }
    out.push_str(&s[start..]);
}

/// A complete success document: `<{action}Response xmlns=…><requestId>…</requestId>{body}</…>`.
pub fn success(action: &str, request_id: &str, body: impl FnOnce(&mut XmlWriter)) -> String {
    success_ns(action, EC2_XMLNS, request_id, body)
}

/// A success document in another namespace (STS).
pub fn success_ns(
    action: &str,
    xmlns: &str,
    request_id: &str,
    body: impl FnOnce(&mut XmlWriter),
) -> String {
    success_sized(action, xmlns, request_id, 1024, body)
}

/// A success document whose size the caller can foresee (`capacity` bytes): large
/// listings are written into one allocation instead of growing through a dozen.
pub fn success_sized(
    action: &str,
    xmlns: &str,
    request_id: &str,
    capacity: usize,
    body: impl FnOnce(&mut XmlWriter),
) -> String {
    success_writer(action, xmlns, request_id, capacity, body).into_string()
}

/// [`success_sized`] as the writer that wrote it (for its [`Rope`]).
pub fn success_writer(
    action: &str,
    xmlns: &str,
    request_id: &str,
    capacity: usize,
    body: impl FnOnce(&mut XmlWriter),
) -> XmlWriter {
    let mut w = XmlWriter::with_capacity(capacity);
    let _ = write!(
        w.buf,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{xmlns}\">"
    );
    w.text("requestId", request_id);
    body(&mut w);
    let _ = write!(w.buf, "</{action}Response>");
    w
}

/// EC2's error envelope.
pub fn error(code: &str, message: &str, request_id: &str) -> String {
    let mut w = XmlWriter::with_capacity(256);
    w.buf
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>");
    w.open("Errors").open("Error");
    w.text("Code", code).text("Message", message);
    w.close("Error").close("Errors");
    w.text("RequestID", request_id);
    w.buf.push_str("</Response>");
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The char-by-char definition the fast path must agree with.
    fn escape_reference(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                c if !is_xml_char(c) => out.push('\u{FFFD}'),
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        /// Long strings of mostly ordinary text with specials anywhere, so the
        /// eight-at-a-time scan meets them at every offset of a word.
        #[test]
        fn fast_escape_agrees_on_long_strings(
            s in "([a-z0-9.-]{0,11}(<|>|&|\"|'|\t|\n|\u{1}|\u{7f}|é|\u{FFFE}|\u{FFFF}|\u{EFBF}|日)?){0,12}"
        ) {
            let mut fast = String::new();
            escape_into(&mut fast, &s);
            proptest::prop_assert_eq!(fast, escape_reference(&s));
        }
    }

    #[test]
    fn fast_escape_agrees_with_the_definition() {
        let pieces = [
            "",
            "a",
            "<",
            ">",
            "&",
            "\"",
            "'",
            "\t",
            "\n",
            "\r",
            "\u{0}",
            "\u{1f}",
            "\u{7f}",
            "é",
            "\u{FFFD}",
            "\u{FFFE}",
            "\u{FFFF}",
            "\u{EFBF}",
            "\u{F000}",
            "\u{FEFF}",
            "\u{10000}",
            "日本",
            "i-0123",
        ];
        // Every pair and triple, so each special sits at the start, middle and end.
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let s = format!("{a}{b}{c}");
                    let mut fast = String::new();
                    escape_into(&mut fast, &s);
                    assert_eq!(fast, escape_reference(&s), "escaping {s:?}");
                }
            }
        }
    }

    #[test]
    fn shared_pieces_go_in_place_uncopied() {
        let kept = Bytes::from("<instanceId>i-1</instanceId>".to_string());
        let write = |w: &mut XmlWriter| {
            w.open("set");
            w.open("item").shared(&kept).close("item");
            w.open("item")
                .shared(&kept)
                .shared(&Bytes::new())
                .close("item");
            w.close("set");
        };
        let mut w = XmlWriter::default();
        write(&mut w);
        let expected = format!(
            "<set><item>{0}</item><item>{0}</item></set>",
            "<instanceId>i-1</instanceId>"
        );
        let rope = w.into_rope();
        assert_eq!(rope.to_text(), expected);
        assert_eq!(rope.len(), expected.len());
        let pieces = rope.into_pieces();
        assert_eq!(pieces.len(), 5, "own text, kept, own text, kept, own text");
        // The kept pieces are the kept text itself, not copies of it.
        assert_eq!(pieces[1].as_ptr(), kept.as_ptr());
        assert_eq!(pieces[3].as_ptr(), kept.as_ptr());
        let mut w = XmlWriter::default();
        write(&mut w);
        assert_eq!(w.into_string(), expected);
        assert!(Rope::from(String::new()).into_pieces().is_empty());
    }

    #[test]
    fn escapes_and_nests() {
        let doc = success("DescribeThings", "req-1", |w| {
            w.list("things", ["a<b", "c&d"], |w, s| {
                w.text("name", s);
            });
            w.opt_text("absent", None).bool("flag", true).num("n", 16);
        });
        assert!(doc.contains(
            "<DescribeThingsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-1</requestId>"
        ));
        assert!(doc.contains(
            "<things><item><name>a&lt;b</name></item><item><name>c&amp;d</name></item></things>"
        ));
        assert!(doc.contains("<flag>true</flag><n>16</n></DescribeThingsResponse>"));
        assert!(!doc.contains("absent"));
    }

    #[test]
    fn error_envelope() {
        let doc = error("InvalidAction", "bad <action>", "r");
        assert!(doc.ends_with("<Response><Errors><Error><Code>InvalidAction</Code><Message>bad &lt;action&gt;</Message></Error></Errors><RequestID>r</RequestID></Response>"));
    }

    #[test]
    fn control_characters_never_break_documents() {
        let mut s = String::new();
        escape_into(&mut s, "a\u{1}b\nc");
        assert_eq!(s, "a\u{FFFD}b\nc");
    }
}
