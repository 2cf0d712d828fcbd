//! Facts about this machine that configuration defaults are computed from:
//! the host name (myhostname, mydomain) and the interface addresses
//! (mynetworks).

use std::net::IpAddr;

use ironpost_conf::HostFacts;
use nix::ifaddrs::getifaddrs;

/// Reads the host name and the addresses of the interfaces that are up.
/// Failures leave the facts empty; the configuration then falls back to
/// `localhost` and the loopback networks.
pub fn facts() -> HostFacts {
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let mut interfaces = Vec::new();
    if let Ok(addrs) = getifaddrs() {
        for ifa in addrs {
            let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
                continue;
            };
            let pair = if let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                (IpAddr::V4(a.ip()), u32::from(m.ip()).count_ones() as u8)
            } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                (IpAddr::V6(a.ip()), u128::from(m.ip()).count_ones() as u8)
            } else {
                continue;
            };
            if !interfaces.contains(&pair) {
                interfaces.push(pair);
            }
        }
    }
    HostFacts {
        hostname,
        interfaces,
    }
}
