//! Brute-force protection shared by every protocol: each failed login
//! waits auth_failure_delay before its answer; after auth_failure_limit
//! failures from one address within auth_failure_window, that address may
//! not try again for auth_failure_lockout. Successful logins never wait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ironpost_conf::{ConfError, Config, params};

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub delay: Duration,
    /// 0: no lockout.
    pub limit: u32,
    pub window: Duration,
    pub lockout: Duration,
}

impl Limits {
    pub fn from_config(cfg: &Config) -> Result<Limits, ConfError> {
        Ok(Limits {
            delay: cfg.get_time(params::AUTH_FAILURE_DELAY)?,
            limit: cfg
                .get_int(params::AUTH_FAILURE_LIMIT)?
                .min(i64::from(u32::MAX)) as u32,
            window: cfg.get_time(params::AUTH_FAILURE_WINDOW)?,
            lockout: cfg.get_time(params::AUTH_FAILURE_LOCKOUT)?,
        })
    }
}

#[derive(Debug)]
struct Record {
    failures: Vec<Instant>,
    locked_until: Option<Instant>,
}

/// Failed logins per client address.
#[derive(Debug, Default)]
pub struct Throttle {
    by_ip: Mutex<HashMap<IpAddr, Record>>,
}

impl Throttle {
    /// The throttle of this process, shared by SMTP, POP3 and IMAP.
    pub fn global() -> &'static Throttle {
        static T: std::sync::OnceLock<Throttle> = std::sync::OnceLock::new();
        T.get_or_init(Throttle::default)
    }

    /// Whether `ip` is locked out now.
    pub fn locked(&self, ip: IpAddr, limits: &Limits, now: Instant) -> bool {
        if limits.limit == 0 {
            return false;
        }
        let map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip)
            .and_then(|r| r.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Notes a failure; returns true when it locked the address out.
    pub fn failed(&self, ip: IpAddr, limits: &Limits, now: Instant) -> bool {
        let mut map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            // Forget what no longer counts, so the table stays small.
            map.retain(|_, r| {
                r.locked_until.is_some_and(|u| now < u)
                    || r.failures
                        .iter()
                        .any(|t| now.duration_since(*t) < limits.window)
            });
        }
        let r = map.entry(ip).or_insert(Record {
            failures: Vec::new(),
            locked_until: None,
        });
        r.failures
            .retain(|t| now.duration_since(*t) < limits.window);
        r.failures.push(now);
        if limits.limit > 0 && r.failures.len() >= limits.limit as usize {
            r.locked_until = Some(now + limits.lockout);
            r.failures.clear();
            return true;
        }
        false
    }

    /// A successful login forgets earlier failures of the address.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&ip).is_some_and(|r| r.locked_until.is_none()) {
            map.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_after_the_limit_and_expiry() {
        let t = Throttle::default();
        let limits = Limits {
            delay: Duration::ZERO,
            limit: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(600),
        };
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let now = Instant::now();
        assert!(!t.failed(ip, &limits, now));
        assert!(!t.failed(ip, &limits, now + Duration::from_secs(1)));
        assert!(!t.locked(ip, &limits, now + Duration::from_secs(2)));
        assert!(t.failed(ip, &limits, now + Duration::from_secs(2)));
        assert!(t.locked(ip, &limits, now + Duration::from_secs(3)));
        assert!(!t.locked(other, &limits, now + Duration::from_secs(3)));
        assert!(!t.locked(ip, &limits, now + Duration::from_secs(603)));
        // Failures outside the window do not add up.
        let t = Throttle::default();
        assert!(!t.failed(ip, &limits, now));
        assert!(!t.failed(ip, &limits, now + Duration::from_secs(61)));
        assert!(!t.failed(ip, &limits, now + Duration::from_secs(122)));
        assert!(!t.locked(ip, &limits, now + Duration::from_secs(123)));
        // A success forgets; limit 0 never locks.
        t.succeeded(ip);
        let none = Limits { limit: 0, ..limits };
        for i in 0..10 {
            t.failed(other, &none, now + Duration::from_secs(i));
        }
        assert!(!t.locked(other, &none, now + Duration::from_secs(11)));
    }
}
