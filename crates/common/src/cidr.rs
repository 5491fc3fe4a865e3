//! CIDR blocks: parsing, containment, overlap and the addresses EC2 reserves.
//!
//! Parsing is strict on purpose: a block is written in its canonical form (no host
//! bits set, no leading zeros, a prefix length in range), because EC2 rejects
//! `10.0.0.1/16` for a VPC or a rule rather than silently widening it, and a stored
//! block must compare equal to the same block written by another client.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// How many addresses of every subnet EC2 keeps for itself: the network address, the
/// VPC router (+1), the DNS server (+2), one reserved for future use (+3) and the
/// broadcast address.
pub const SUBNET_RESERVED: u64 = 5;

/// An IPv4 CIDR block in canonical form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: u32,
    len: u8,
}

impl Ipv4Cidr {
    /// A block from its network address and prefix length; `None` when host bits are
    /// set or the length is over 32.
    pub fn new(network: Ipv4Addr, len: u8) -> Option<Self> {
        if len > 32 {
            return None;
        }
        let n = u32::from(network);
        (n & mask4(len) == n).then_some(Ipv4Cidr { network: n, len })
    }

    /// Parses `a.b.c.d/len` in canonical form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, len) = s.split_once('/')?;
        let len = parse_len(len, 32)?;
        let addr = Ipv4Addr::from_str(addr).ok()?;
        Ipv4Cidr::new(addr, len)
    }

    /// The network (first) address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// The prefix length (`16` for a `/16`).
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// How many addresses the block spans (2^(32 - len)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.len)
    }

    /// The last address of the block (the broadcast address of a subnet).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network | !mask4(self.len))
    }

    /// True when `addr` lies inside the block.
    pub fn contains_addr(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask4(self.len) == self.network
    }

    /// True when every address of `other` lies inside this block.
    pub fn contains(&self, other: &Ipv4Cidr) -> bool {
        other.len >= self.len && self.contains_addr(other.network())
    }

    /// True when the two blocks share at least one address (for prefixes that is the
    /// same as one containing the other).
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The `n`th address of the block (0 is the network address), if the block has one.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(self.network + n as u32))
    }

    /// The index of `addr` inside the block, if it lies inside.
    pub fn index_of(&self, addr: Ipv4Addr) -> Option<u64> {
        self.contains_addr(addr)
            .then(|| u64::from(u32::from(addr) - self.network))
    }

    /// The five addresses EC2 reserves in a subnet with this block: the first four
    /// and the last.
    pub fn reserved(&self) -> Vec<Ipv4Addr> {
        let size = self.size();
        let mut out: Vec<Ipv4Addr> = (0..SUBNET_RESERVED - 1)
            .filter_map(|i| self.nth(i))
            .collect();
        if size > SUBNET_RESERVED - 1 {
            out.push(self.last());
        }
        out
    }

    /// True when EC2 would never hand `addr` to an instance in a subnet with this block.
    pub fn is_reserved(&self, addr: Ipv4Addr) -> bool {
        match self.index_of(addr) {
            Some(i) => i < SUBNET_RESERVED - 1 || i == self.size() - 1,
            None => false,
        }
    }

    /// How many addresses a subnet with this block can give to instances.
    pub fn usable(&self) -> u64 {
        self.size().saturating_sub(SUBNET_RESERVED)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.len)
    }
}

/// An IPv6 CIDR block in canonical form (security group rules accept them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Cidr {
    network: u128,
    len: u8,
}

impl Ipv6Cidr {
    /// Parses `addr/len` with no host bits set; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, len) = s.split_once('/')?;
        let len = parse_len(len, 128)?;
        let n = u128::from(Ipv6Addr::from_str(addr).ok()?);
        (n & mask6(len) == n).then_some(Ipv6Cidr { network: n, len })
    }

    /// The network address.
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.network)
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True when every address of `other` lies inside this block.
    pub fn contains(&self, other: &Ipv6Cidr) -> bool {
        other.len >= self.len && other.network & mask6(self.len) == self.network
    }
}

impl fmt::Display for Ipv6Cidr {
    /// The RFC 5952 form (`2001:db8::/32`), so equal blocks print equally.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.len)
    }
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    }
}

/// A prefix length: decimal digits only, no sign, no leading zeros, at most `max`.
fn parse_len(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    let n: u8 = s.parse().ok()?;
    (n <= max).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(s: &str) -> Ipv4Cidr {
        Ipv4Cidr::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn parses_only_canonical_blocks() {
        assert_eq!(c("10.0.0.0/16").to_string(), "10.0.0.0/16");
        assert_eq!(c("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(c("192.168.1.7/32").size(), 1);
        for bad in [
            "10.0.0.1/16",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0/8",
            "10.0.0.256/32",
            "010.0.0.0/8",
            " 10.0.0.0/8",
            "a.b.c.d/8",
            "",
            "/",
        ] {
            assert!(Ipv4Cidr::parse(bad).is_none(), "{bad} should not parse");
        }
    }

    #[test]
    fn containment_and_overlap() {
        let vpc = c("172.31.0.0/16");
        assert!(vpc.contains(&c("172.31.16.0/20")));
        assert!(vpc.contains(&vpc));
        assert!(!vpc.contains(&c("172.30.0.0/16")));
        assert!(!c("172.31.16.0/20").contains(&vpc));
        assert!(c("172.31.0.0/20").overlaps(&c("172.31.8.0/24")));
        assert!(!c("172.31.0.0/20").overlaps(&c("172.31.16.0/20")));
        assert_eq!(c("172.31.0.0/20").last(), Ipv4Addr::new(172, 31, 15, 255));
    }

    #[test]
    fn reserved_addresses() {
        let s = c("10.0.1.0/24");
        assert_eq!(
            s.reserved(),
            vec![
                Ipv4Addr::new(10, 0, 1, 0),
                Ipv4Addr::new(10, 0, 1, 1),
                Ipv4Addr::new(10, 0, 1, 2),
                Ipv4Addr::new(10, 0, 1, 3),
                Ipv4Addr::new(10, 0, 1, 255),
            ]
        );
        assert!(s.is_reserved(Ipv4Addr::new(10, 0, 1, 3)));
        assert!(!s.is_reserved(Ipv4Addr::new(10, 0, 1, 4)));
        assert!(!s.is_reserved(Ipv4Addr::new(10, 0, 2, 0)));
        assert_eq!(s.usable(), 251);
        assert_eq!(c("172.31.0.0/20").usable(), 4091);
        assert_eq!(c("10.0.0.0/28").usable(), 11);
    }

    #[test]
    fn ipv6_blocks() {
        let any = Ipv6Cidr::parse("::/0").unwrap();
        let doc = Ipv6Cidr::parse("2001:DB8::/32").unwrap();
        assert_eq!(doc.to_string(), "2001:db8::/32");
        assert!(any.contains(&doc));
        assert!(!doc.contains(&any));
        assert!(Ipv6Cidr::parse("2001:db8::1/32").is_none());
        assert!(Ipv6Cidr::parse("2001:db8::/129").is_none());
        assert!(Ipv6Cidr::parse("10.0.0.0/8").is_none());
    }

    fn any_cidr() -> impl Strategy<Value = Ipv4Cidr> {
        (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
            Ipv4Cidr::new(Ipv4Addr::from(a & mask4(len)), len).expect("masked")
        })
    }

    proptest! {
        #[test]
        fn display_round_trips(cidr in any_cidr()) {
            prop_assert_eq!(Ipv4Cidr::parse(&cidr.to_string()), Some(cidr));
        }

        #[test]
        fn parse_never_panics(s in ".{0,24}") {
            let _ = Ipv4Cidr::parse(&s);
            let _ = Ipv6Cidr::parse(&s);
        }

        #[test]
        fn containment_matches_addresses(a in any_cidr(), b in any_cidr()) {
            // b ⊆ a exactly when both ends of b lie in a.
            let by_ends = a.contains_addr(b.network()) && a.contains_addr(b.last());
            prop_assert_eq!(a.contains(&b), by_ends);
            // Overlap is symmetric and implied by containment.
            prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
            if a.contains(&b) { prop_assert!(a.overlaps(&b)); }
            // Two blocks overlap exactly when their ranges intersect.
            let (a0, a1) = (u32::from(a.network()), u32::from(a.last()));
            let (b0, b1) = (u32::from(b.network()), u32::from(b.last()));
            prop_assert_eq!(a.overlaps(&b), a0 <= b1 && b0 <= a1);
        }

        #[test]
        fn reserved_are_five_and_inside(len in 16u8..=28, base in any::<u32>()) {
            let s = Ipv4Cidr::new(Ipv4Addr::from(base & mask4(len)), len).unwrap();
            let r = s.reserved();
            prop_assert_eq!(r.len() as u64, SUBNET_RESERVED);
            for a in &r {
                prop_assert!(s.contains_addr(*a));
                prop_assert!(s.is_reserved(*a));
            }
            prop_assert_eq!(s.usable(), s.size() - SUBNET_RESERVED);
            // The first usable address is the fifth and is not reserved.
            let first = s.nth(4).unwrap();
            prop_assert!(!s.is_reserved(first));
            prop_assert_eq!(s.index_of(first), Some(4));
        }

        #[test]
        fn nth_and_index_agree(cidr in any_cidr(), n in any::<u64>()) {
            let n = n % cidr.size();
            let a = cidr.nth(n).unwrap();
            prop_assert_eq!(cidr.index_of(a), Some(n));
            prop_assert!(cidr.nth(cidr.size()).is_none());
        }
    }
}
