//! Which addresses tile-store may fetch source images from: a pure function of an
//! address and the allow-list, so it is tested without sending a packet.
//!
//! Every address that is not plainly public is refused — loopback, private,
//! shared (CGNAT), link-local (cloud metadata services live there), unique-local
//! IPv6, multicast, broadcast, documentation and other special-use ranges — unless
//! `--fetch-allow` names the host or a network holding the address. IPv6 forms that
//! carry an IPv4 address (mapped, NAT64, 6to4) are judged by that IPv4 address.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A refused address: which host resolved to it and why it is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves to {ip}, a {reason} address; tile-store does not fetch from there unless --fetch-allow names it")]
pub struct Refused {
    /// The host as written in the URL.
    pub host: String,
    /// The address it resolved to (or was).
    pub ip: IpAddr,
    /// The kind of range the address is in.
    pub reason: &'static str,
}

/// The allow-list and the rule: public addresses pass, special-use ones only when allowed.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl AddressPolicy {
    /// A policy allowing, besides public addresses, the given host names, addresses and
    /// CIDR networks (`minio.internal`, `127.0.0.1`, `10.20.0.0/16`, `::1`).
    pub fn new<S: AsRef<str>>(allow: &[S]) -> Result<Self, String> {
        let mut policy = AddressPolicy::default();
        for entry in allow
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
        {
            if let Ok(net) = entry.parse::<IpNet>() {
                policy.nets.push(net.trunc());
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                policy.nets.push(IpNet::from(ip));
            } else if is_host_name(entry) {
                policy.hosts.push(normalise_host(entry));
            } else {
                return Err(format!(
                    "--fetch-allow entry {entry:?} is not a host name, an address or a CIDR network"
                ));
            }
        }
        Ok(policy)
    }

    /// Whether the allow-list names `host` itself (then every address it resolves to passes).
    pub fn allows_host(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.hosts.contains(&host)
    }

    /// Checks one address `host` resolved to (or an address written in the URL).
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let Some(reason) = special_use(ip) else {
            return Ok(());
        };
        let canonical = canonical(ip);
        let allowed = self.allows_host(host)
            || self
                .nets
                .iter()
                .any(|net| net.contains(&ip) || net.contains(&canonical));
        if allowed {
            Ok(())
        } else {
            Err(Refused {
                host: host.to_owned(),
                ip,
                reason,
            })
        }
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The IPv4 address an IPv6 address stands for, when it is an IPv4-mapped one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The kind of special-use range `ip` is in, or `None` for an ordinary public address.
pub fn special_use(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    let reason = match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "cloud metadata",
        (169, 254, _) => "link-local",
        (0, _, _) => "unspecified (\"this network\")",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (255, 255, 255) if d == 255 => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(reason)
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let reason = match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "cloud metadata",
        // NAT64 and 6to4 reach the IPv4 address they carry.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return special_v4(embedded_v4(hi, lo)),
        [0x2002, hi, lo, ..] => return special_v4(embedded_v4(hi, lo)),
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (deprecated)",
        [0x64, 0xff9b, 1, ..] => "local-use NAT64",
        [0x100, 0, 0, 0, ..] => "discard-only",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x2001, 0..=0x1ff, ..] => "IETF protocol assignment",
        [0x3fff, 0..=0x0fff, ..] => "documentation",
        [0xfc00..=0xfdff, ..] => "unique-local",
        [0xfe80..=0xfebf, ..] => "link-local",
        [0xfec0..=0xfeff, ..] => "site-local (deprecated)",
        [0xff00..=0xffff, ..] => "multicast",
        _ => return None,
    };
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn refused(policy: &AddressPolicy, host: &str, addr: &str) -> Option<&'static str> {
        policy.check(host, ip(addr)).err().map(|r| r.reason)
    }

    #[test]
    fn special_ranges_are_refused_by_default() {
        let p = AddressPolicy::default();
        for (addr, reason) in [
            ("127.0.0.1", "loopback"),
            ("127.0.0.2", "loopback"),
            ("127.255.255.254", "loopback"),
            ("::1", "loopback"),
            ("0.0.0.0", "unspecified (\"this network\")"),
            ("::", "unspecified"),
            ("10.0.0.1", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.100.100.200", "shared (CGNAT)"),
            ("100.127.255.255", "shared (CGNAT)"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.0.1", "link-local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fc00::1", "unique-local"),
            ("fdff:ffff::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local (deprecated)"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("192.0.0.192", "IETF protocol assignment"),
            ("2001::1", "IETF protocol assignment"),
            ("100::1", "discard-only"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("::7f00:1", "IPv4-compatible (deprecated)"),
        ] {
            assert_eq!(refused(&p, "h", addr), Some(reason), "{addr}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        let p = AddressPolicy::default();
        assert_eq!(refused(&p, "h", "::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(refused(&p, "h", "::ffff:10.1.2.3"), Some("private"));
        assert_eq!(
            refused(&p, "h", "::ffff:169.254.169.254"),
            Some("cloud metadata")
        );
        assert_eq!(
            refused(&p, "h", "64:ff9b::a9fe:a9fe"),
            Some("cloud metadata")
        );
        assert_eq!(refused(&p, "h", "2002:c0a8:0101::1"), Some("private"));
        // The same forms of a public address pass.
        assert_eq!(refused(&p, "h", "::ffff:8.8.8.8"), None);
        assert_eq!(refused(&p, "h", "64:ff9b::808:808"), None);
        assert_eq!(refused(&p, "h", "2002:0808:0808::1"), None);
    }

    #[test]
    fn public_addresses_pass() {
        let p = AddressPolicy::default();
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "52.95.110.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "192.169.0.1",
            "2a00:1450:4001:82a::200e",
            "2600:1f18::1",
        ] {
            assert_eq!(refused(&p, "h", addr), None, "{addr}");
        }
    }

    #[test]
    fn the_allow_list_names_hosts_addresses_and_networks() {
        let p = AddressPolicy::new(&["127.0.0.1", "10.20.0.0/16", "MinIO.internal.", "[::1]"])
            .expect("valid list");
        assert_eq!(refused(&p, "127.0.0.1", "127.0.0.1"), None);
        assert_eq!(refused(&p, "127.0.0.2", "127.0.0.2"), Some("loopback"));
        assert_eq!(refused(&p, "h", "::ffff:127.0.0.1"), None);
        assert_eq!(refused(&p, "h", "::1"), None);
        assert_eq!(refused(&p, "h", "10.20.255.1"), None);
        assert_eq!(refused(&p, "h", "10.21.0.1"), Some("private"));
        assert_eq!(refused(&p, "h", "169.254.169.254"), Some("cloud metadata"));
        // A named host may resolve to anything, as its operator decided.
        assert_eq!(refused(&p, "minio.internal", "10.9.9.9"), None);
        assert_eq!(refused(&p, "minio.INTERNAL.", "172.16.0.5"), None);
        assert_eq!(refused(&p, "other.internal", "10.9.9.9"), Some("private"));
    }

    #[test]
    fn bad_allow_list_entries_are_refused() {
        assert!(AddressPolicy::new(&["10.0.0.0/33"]).is_err());
        assert!(AddressPolicy::new(&["http://host/"]).is_err());
        assert!(AddressPolicy::new(&["a b"]).is_err());
        assert!(AddressPolicy::new(&["", " "]).is_ok());
    }

    #[test]
    fn refusals_say_what_and_how_to_allow() {
        let p = AddressPolicy::default();
        let e = p
            .check("metadata.internal", ip("169.254.169.254"))
            .expect_err("refused");
        let text = e.to_string();
        assert!(text.contains("metadata.internal"), "{text}");
        assert!(text.contains("169.254.169.254"), "{text}");
        assert!(text.contains("cloud metadata"), "{text}");
        assert!(text.contains("--fetch-allow"), "{text}");
    }
}
