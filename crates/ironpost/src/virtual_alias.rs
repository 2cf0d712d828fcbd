//! virtual_alias_maps applied to envelope recipients, as Postfix's
//! cleanup(8) does before a message is queued: every recipient is looked
//! up (Postfix's search order: `user+ext@domain`, `user@domain`, `user` for
//! local domains, `@domain`) and replaced by what it maps to, recursively.
//!
//! - An address that maps to itself (`a@x -> a@x, b@x`) is kept, not
//!   expanded again.
//! - An unmatched address extension is carried to the results
//!   (propagate_unmatched_extensions, `virtual` by default):
//!   `jerry+lists@x -> tom@y` gives `tom+lists@y`.
//! - Results are rewritten as addresses are (`tom` becomes `tom@$myorigin`).
//! - The same final address twice is delivered once.
//! - The original recipient (X-Original-To, ORCPT, NOTIFY) is kept.
//! - More than virtual_alias_recursion_limit levels or
//!   virtual_alias_expansion_limit addresses, or a table that cannot be
//!   read, is a temporary failure: the message is not accepted now (smtpd
//!   answers 451 4.3.0), as Postfix defers it.

use std::sync::Arc;

use ironpost_conf::{ConfError, Config, params};

use crate::maps::{LookupError, MapContext, MapList};
use crate::queue::Recipient;
use crate::resolve::{AddressClass, Resolver};

/// Why recipients could not be expanded now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError(pub String);

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<LookupError> for ExpandError {
    fn from(e: LookupError) -> Self {
        ExpandError(e.0)
    }
}

/// virtual_alias_maps and the settings that go with it.
#[derive(Debug)]
pub struct VirtualAliases {
    maps: MapList,
    resolver: Arc<Resolver>,
    delimiters: String,
    propagate_extension: bool,
    recursion_limit: usize,
    expansion_limit: usize,
}

impl VirtualAliases {
    pub fn from_config(
        cfg: &Config,
        ctx: &MapContext,
        resolver: Arc<Resolver>,
    ) -> Result<VirtualAliases, ConfError> {
        let limit = |p| -> Result<usize, ConfError> {
            Ok(usize::try_from(cfg.get_int(p)?).unwrap_or(usize::MAX))
        };
        Ok(VirtualAliases {
            maps: MapList::open_all(&cfg.get_maps(params::VIRTUAL_ALIAS_MAPS)?, ctx),
            resolver,
            delimiters: cfg.get_str(params::RECIPIENT_DELIMITER)?.trim().to_string(),
            propagate_extension: cfg
                .get_list(params::PROPAGATE_UNMATCHED_EXTENSIONS)?
                .iter()
                .any(|w| w == "virtual"),
            recursion_limit: limit(params::VIRTUAL_ALIAS_RECURSION_LIMIT)?,
            expansion_limit: limit(params::VIRTUAL_ALIAS_EXPANSION_LIMIT)?,
        })
    }

    /// The recipients with every virtual alias replaced.
    pub fn expand(&self, recipients: Vec<Recipient>) -> Result<Vec<Recipient>, ExpandError> {
        if self.maps.is_empty() {
            return Ok(recipients);
        }
        let mut out: Vec<Recipient> = Vec::with_capacity(recipients.len());
        for r in recipients {
            let mut finals = Vec::new();
            self.expand_one(&r.address, 0, &mut finals)?;
            for address in finals {
                if out.iter().any(|o| o.address.eq_ignore_ascii_case(&address)) {
                    continue;
                }
                if out.len() >= self.expansion_limit {
                    return Err(ExpandError(format!(
                        "unreasonable virtual_alias_maps map expansion size for {} -- message not accepted, try again later",
                        r.address
                    )));
                }
                out.push(Recipient {
                    address,
                    ..r.clone()
                });
            }
        }
        Ok(out)
    }

    fn expand_one(
        &self,
        address: &str,
        depth: usize,
        out: &mut Vec<String>,
    ) -> Result<(), ExpandError> {
        if depth > self.recursion_limit {
            return Err(ExpandError(format!(
                "unreasonable virtual_alias_maps map nesting for {address} -- message not accepted, try again later"
            )));
        }
        if out.len() > self.expansion_limit {
            return Err(ExpandError(format!(
                "unreasonable virtual_alias_maps map expansion size for {address} -- message not accepted, try again later"
            )));
        }
        let local = self
            .resolver
            .resolve(address)?
            .is_some_and(|r| r.class == AddressClass::Local);
        let Some(found) = self.maps.find_address(address, &self.delimiters, local)? else {
            out.push(address.to_string());
            return Ok(());
        };
        for target in ironpost_conf::value::split_list(&found.value) {
            let target = target.trim().trim_start_matches('<').trim_end_matches('>');
            if target.is_empty() {
                continue;
            }
            let mut target = match self.resolver.resolve(target)? {
                Some(r) => r.address,
                None => target.to_string(),
            };
            if self.propagate_extension
                && let Some(ext) = &found.unmatched_extension
                && let Some(d) = self.delimiters.chars().next()
            {
                target = with_extension(&target, d, ext);
            }
            if target.eq_ignore_ascii_case(address) {
                // Maps to itself: deliver here, do not look it up again.
                if !out.iter().any(|o| o.eq_ignore_ascii_case(&target)) {
                    out.push(target);
                }
            } else {
                self.expand_one(&target, depth + 1, out)?;
            }
        }
        Ok(())
    }
}

/// `user@domain` with `+ext` added to the local part.
fn with_extension(address: &str, delimiter: char, ext: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}{delimiter}{ext}@{domain}"),
        None => format!("{address}{delimiter}{ext}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironpost_conf::HostFacts;
    use ironpost_conf::maincf::MainCf;
    use std::path::{Path, PathBuf};

    fn aliases(map: &str) -> VirtualAliases {
        let text = format!(
            "myhostname = mail.example.test\nmydomain = example.test\nmyorigin = $mydomain\n\
             mydestination = localhost\nvirtual_mailbox_domains = example.test\n\
             recipient_delimiter = +\nvirtual_alias_recursion_limit = 5\n\
             virtual_alias_maps = inline:{{ {map} }}\n"
        );
        let cfg = Config::from_main(
            MainCf::parse(Path::new("main.cf"), &text).unwrap(),
            PathBuf::from("/etc/ironpost"),
            false,
            &HostFacts::default(),
        );
        let ctx = MapContext::default();
        let r = Arc::new(Resolver::from_config(&cfg, &ctx, &[]).unwrap());
        VirtualAliases::from_config(&cfg, &ctx, r).unwrap()
    }

    fn expand(v: &VirtualAliases, rcpts: &[&str]) -> Result<Vec<(String, String)>, ExpandError> {
        Ok(v.expand(rcpts.iter().map(|a| Recipient::new(a)).collect())?
            .into_iter()
            .map(|r| (r.address, r.original))
            .collect())
    }

    #[test]
    fn expansion_as_postfix_cleanup() {
        let v = aliases(
            "{team@example.test=jerry@example.test, marry}, \
             {all@example.test=team@example.test, boss@example.test}, \
             {keep@example.test=keep@example.test, copy@example.test}, \
             jerry@example.test=jerry@example.test, \
             lists@example.test=tom@other.test, \
             @catch.test=postmaster@example.test",
        );
        assert_eq!(
            expand(&v, &["all@example.test"]).unwrap(),
            vec![
                ("jerry@example.test".into(), "all@example.test".into()),
                ("marry@example.test".into(), "all@example.test".into()),
                ("boss@example.test".into(), "all@example.test".into()),
            ]
        );
        assert_eq!(
            expand(&v, &["keep@example.test"]).unwrap(),
            vec![
                ("keep@example.test".into(), "keep@example.test".into()),
                ("copy@example.test".into(), "keep@example.test".into()),
            ]
        );
        // The extension goes along; the same address twice is kept once.
        assert_eq!(
            expand(
                &v,
                &[
                    "lists+rust@example.test",
                    "jerry@example.test",
                    "team@example.test"
                ]
            )
            .unwrap()
            .into_iter()
            .map(|(a, _)| a)
            .collect::<Vec<_>>(),
            vec![
                "tom+rust@other.test",
                "jerry@example.test",
                "marry@example.test"
            ]
        );
        assert_eq!(
            expand(&v, &["anyone@catch.test"]).unwrap(),
            vec![("postmaster@example.test".into(), "anyone@catch.test".into())]
        );
        assert_eq!(
            expand(&v, &["other@example.test"]).unwrap(),
            vec![("other@example.test".into(), "other@example.test".into())]
        );
    }

    #[test]
    fn loops_and_failures_defer() {
        let v = aliases("a@example.test=b@example.test, b@example.test=a@example.test");
        let e = expand(&v, &["a@example.test"]).unwrap_err();
        assert!(
            e.0.starts_with("unreasonable virtual_alias_maps map nesting for "),
            "{e}"
        );
    }
}
