//! LOGIN: the server asks `Username:` then `Password:` (each base64 on the
//! wire); the client answers each. An initial response, if given, is the
//! user name.

use super::{Credentials, SaslError};

/// The first challenge.
pub const USERNAME: &[u8] = b"Username:";
/// The second challenge.
pub const PASSWORD: &[u8] = b"Password:";

/// A LOGIN exchange.
#[derive(Debug, Default)]
pub struct Login {
    user: Option<String>,
}

/// What to do after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge.
    Challenge(&'static [u8]),
    /// Check these credentials.
    Done(Credentials),
}

impl Login {
    pub fn new() -> Login {
        Login::default()
    }

    /// The first step: with an initial response it is the user name.
    pub fn start(&mut self, initial: Option<&[u8]>) -> Result<Step, SaslError> {
        match initial {
            None => Ok(Step::Challenge(USERNAME)),
            Some(r) => self.respond(r),
        }
    }

    /// Feeds one decoded client response.
    pub fn respond(&mut self, response: &[u8]) -> Result<Step, SaslError> {
        let text =
            String::from_utf8(response.to_vec()).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        if text.len() > 255 || text.contains('\0') {
            return Err(SaslError::Malformed("bad user name or password"));
        }
        match self.user.take() {
            None => {
                if text.is_empty() {
                    return Err(SaslError::Malformed("empty user name"));
                }
                self.user = Some(text);
                Ok(Step::Challenge(PASSWORD))
            }
            Some(user) => Ok(Step::Done(Credentials {
                authzid: None,
                authcid: user,
                password: text,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange() {
        let mut l = Login::new();
        assert_eq!(l.start(None), Ok(Step::Challenge(USERNAME)));
        assert_eq!(l.respond(b"jerry"), Ok(Step::Challenge(PASSWORD)));
        let Ok(Step::Done(c)) = l.respond(b"secret") else {
            panic!()
        };
        assert_eq!(
            (c.authcid.as_str(), c.password.as_str()),
            ("jerry", "secret")
        );
        let mut l = Login::new();
        assert_eq!(l.start(Some(b"tom")), Ok(Step::Challenge(PASSWORD)));
        assert!(Login::new().start(Some(b"")).is_err());
        assert_eq!(super::super::encode_challenge(USERNAME), "VXNlcm5hbWU6");
        assert_eq!(super::super::encode_challenge(PASSWORD), "UGFzc3dvcmQ6");
    }
}
