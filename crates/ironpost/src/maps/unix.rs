//! `unix:passwd.byname` and `unix:group.byname`: the system's account files.
//! A lookup returns the whole line, as Postfix's dict_unix does
//! (`name:passwd:uid:gid:gecos:dir:shell` for passwd). The files are read at
//! each lookup, so accounts added later are seen at once.

use std::path::PathBuf;

use super::{LookupError, MapContext, OpenError, TableError};

#[derive(Debug)]
pub struct UnixTable {
    spec: &'static str,
    path: PathBuf,
}

impl UnixTable {
    pub fn open(name: &str, ctx: &MapContext) -> Result<UnixTable, OpenError> {
        let (spec, path) = match name {
            "passwd.byname" => ("unix:passwd.byname", ctx.passwd_file.clone()),
            "group.byname" => ("unix:group.byname", ctx.group_file.clone()),
            _ => {
                return Err(OpenError::Syntax(TableError {
                    file: format!("unix:{name}"),
                    line: None,
                    message: "unknown table: use unix:passwd.byname or unix:group.byname"
                        .to_string(),
                }));
            }
        };
        Ok(UnixTable { spec, path })
    }

    /// The account line whose first field is `key`.
    pub fn lookup(&self, key: &str) -> Result<Option<String>, LookupError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            LookupError(format!(
                "{} is unavailable. open {}: {}",
                self.spec,
                self.path.display(),
                ironpost_conf::io_reason(&e)
            ))
        })?;
        Ok(text
            .lines()
            .find(|line| line.split(':').next() == Some(key) && !key.is_empty())
            .map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup_returns_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/bash\njerry:x:1000:1000:Jerry:/home/jerry:/bin/sh\n",
        )
        .unwrap();
        let ctx = MapContext {
            passwd_file: passwd,
            ..MapContext::default()
        };
        let t = UnixTable::open("passwd.byname", &ctx).unwrap();
        assert_eq!(
            t.lookup("jerry").unwrap().as_deref(),
            Some("jerry:x:1000:1000:Jerry:/home/jerry:/bin/sh")
        );
        assert_eq!(t.lookup("jer").unwrap(), None);
        assert_eq!(t.lookup("").unwrap(), None);
        assert!(UnixTable::open("shadow.byname", &ctx).is_err());
    }

    #[test]
    fn unreadable_file_is_a_temporary_failure() {
        let ctx = MapContext {
            passwd_file: PathBuf::from("/nonexistent/passwd"),
            ..MapContext::default()
        };
        let t = UnixTable::open("passwd.byname", &ctx).unwrap();
        assert_eq!(
            t.lookup("root").unwrap_err().0,
            "unix:passwd.byname is unavailable. open /nonexistent/passwd: No such file or directory"
        );
    }
}
