//! The values an account is made of, parsed once at the edge: an [`Email`], a [`Password`]
//! that meets the policy, a [`FullName`] and a [`Role`]. Code past the handlers never sees
//! the raw strings they came from.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest address SMTP can deliver to (RFC 5321, path limit minus the angle brackets).
const EMAIL_MAX_LEN: usize = 254;
const PASSWORD_MIN_CHARS: usize = 8;
const PASSWORD_MAX_CHARS: usize = 128;
const FULL_NAME_MAX_CHARS: usize = 100;

/// Why a string is not an [`Email`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing but whitespace.
    #[error("the email address is empty")]
    Empty,
    /// Longer than [`EMAIL_MAX_LEN`] characters.
    #[error("the email address is longer than {EMAIL_MAX_LEN} characters")]
    TooLong,
    /// No `@`, or more than one.
    #[error("the email address must contain exactly one '@'")]
    AtSign,
    /// Nothing before the `@`.
    #[error("the email address has nothing before the '@'")]
    EmptyLocalPart,
    /// The part after the `@` is empty, has no dot, or starts or ends with one.
    #[error("the email address needs a domain with a dot after the '@', such as example.com")]
    Domain,
    /// Whitespace or a control character inside the address.
    #[error("the email address must not contain spaces or control characters")]
    Whitespace,
}

/// An email address: trimmed and lowercased, so that two spellings of one address are
/// one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses a user-supplied address.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(EmailError::Empty);
        }
        if email.chars().count() > EMAIL_MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Whitespace);
        }
        let mut parts = email.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::AtSign);
        };
        if local.is_empty() {
            return Err(EmailError::EmptyLocalPart);
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(EmailError::Domain);
        }
        Ok(Email(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        // Parsing guarantees exactly one '@'.
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a string is not an acceptable [`Password`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`PASSWORD_MIN_CHARS`] characters.
    #[error("the password must have at least {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    /// More than [`PASSWORD_MAX_CHARS`] characters.
    #[error("the password must have at most {PASSWORD_MAX_CHARS} characters")]
    TooLong,
    /// No letter, or no digit.
    #[error("the password must contain at least one letter and one digit")]
    NeedsLetterAndDigit,
    /// The same as the part of the email address before the `@`.
    #[error("the password must not be the same as your email address's name")]
    SameAsEmail,
}

/// A new password that meets the policy. It has no `Display` and its `Debug` is redacted,
/// so it cannot end up in a log by accident.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks a new password against the policy. The email is the one the password will
    /// belong to: a password equal to its local part is the first thing an attacker tries.
    pub fn parse(raw: &str, email: &Email) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > PASSWORD_MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        let has_letter = raw.chars().any(char::is_alphabetic);
        let has_digit = raw.chars().any(|c| c.is_ascii_digit());
        if !has_letter || !has_digit {
            return Err(PasswordError::NeedsLetterAndDigit);
        }
        if raw.to_lowercase() == email.local_part() {
            return Err(PasswordError::SameAsEmail);
        }
        Ok(Password(raw.to_owned()))
    }

    /// The plaintext, for hashing only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Why a string is not a [`FullName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FullNameError {
    /// Nothing but whitespace.
    #[error("the full name is empty")]
    Empty,
    /// More than [`FULL_NAME_MAX_CHARS`] characters.
    #[error("the full name must have at most {FULL_NAME_MAX_CHARS} characters")]
    TooLong,
    /// A control character (a line break, a NUL...) inside the name.
    #[error("the full name must be one line without control characters")]
    ControlCharacter,
}

/// A person's name as they wish to be addressed, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    /// Parses a user-supplied name.
    pub fn parse(raw: &str) -> Result<Self, FullNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FullNameError::Empty);
        }
        if name.chars().count() > FULL_NAME_MAX_CHARS {
            return Err(FullNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(FullNameError::ControlCharacter);
        }
        Ok(FullName(name.to_owned()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an account may do. Admins may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Buys products and tickets, and publishes service orders.
    Customer,
    /// Offers home services: accepts and carries out service orders.
    Provider,
    /// Sells them.
    Merchant,
    /// Operates the platform.
    Admin,
}

impl Role {
    /// The name stored in the database and carried in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Provider => "provider",
            Role::Merchant => "merchant",
            Role::Admin => "admin",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "customer" => Some(Role::Customer),
            "provider" => Some(Role::Provider),
            "merchant" => Some(Role::Merchant),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The roles an account may choose for itself at registration. Admin and merchant are
/// never self-assigned: there is no way to spell them here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignupRole {
    /// The default.
    #[default]
    Customer,
    /// A service provider of the marketplace.
    Provider,
}

/// The role named at registration is not one an account may choose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be \"customer\" or \"provider\"")]
pub struct SignupRoleError;

impl SignupRole {
    /// Parses the role asked for at registration; absent means customer.
    pub fn parse(raw: Option<&str>) -> Result<Self, SignupRoleError> {
        match raw.map(str::trim) {
            None | Some("customer") => Ok(SignupRole::Customer),
            Some("provider") => Ok(SignupRole::Provider),
            Some(_) => Err(SignupRoleError),
        }
    }

    /// The account role it grants.
    pub fn role(self) -> Role {
        match self {
            SignupRole::Customer => Role::Customer,
            SignupRole::Provider => Role::Provider,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    #[test]
    fn email_is_trimmed_and_lowercased() {
        assert_eq!(email("  Ada@Example.COM ").as_str(), "ada@example.com");
    }

    #[test]
    fn email_refuses_malformed_addresses() {
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
        assert_eq!(Email::parse("ada.example.com"), Err(EmailError::AtSign));
        assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::AtSign));
        assert_eq!(
            Email::parse("@example.com"),
            Err(EmailError::EmptyLocalPart)
        );
        assert_eq!(Email::parse("ada@localhost"), Err(EmailError::Domain));
        assert_eq!(Email::parse("ada@example."), Err(EmailError::Domain));
        assert_eq!(Email::parse("ada@"), Err(EmailError::Domain));
        assert_eq!(
            Email::parse("a da@example.com"),
            Err(EmailError::Whitespace)
        );
        assert_eq!(
            Email::parse("ada@\u{0}.example.com"),
            Err(EmailError::Whitespace)
        );
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn password_policy_refuses_weak_passwords() {
        let owner = email("ada1234x@example.com");
        assert_eq!(
            Password::parse("abc123", &owner).unwrap_err(),
            PasswordError::TooShort
        );
        assert_eq!(
            Password::parse("abcdefghij", &owner).unwrap_err(),
            PasswordError::NeedsLetterAndDigit
        );
        assert_eq!(
            Password::parse("1234567890", &owner).unwrap_err(),
            PasswordError::NeedsLetterAndDigit
        );
        assert_eq!(
            Password::parse("ADA1234X", &owner).unwrap_err(),
            PasswordError::SameAsEmail
        );
        let long = format!("a1{}", "b".repeat(127));
        assert_eq!(
            Password::parse(&long, &owner).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(Password::parse("correct horse 9", &owner).is_ok());
    }

    #[test]
    fn password_debug_does_not_reveal_the_password() {
        let password = Password::parse("s3cretpassword", &email("ada@example.com")).unwrap();
        assert!(!format!("{password:?}").contains("s3cret"));
    }

    #[test]
    fn full_name_is_trimmed_and_bounded() {
        assert_eq!(
            FullName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert_eq!(FullName::parse(" "), Err(FullNameError::Empty));
        assert_eq!(
            FullName::parse(&"é".repeat(101)),
            Err(FullNameError::TooLong)
        );
        assert!(FullName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn signup_roles_are_customer_by_default_or_provider_never_admin() {
        assert_eq!(SignupRole::parse(None), Ok(SignupRole::Customer));
        assert_eq!(
            SignupRole::parse(Some("customer")).unwrap().role(),
            Role::Customer
        );
        assert_eq!(
            SignupRole::parse(Some("provider")).unwrap().role(),
            Role::Provider
        );
        for bad in ["admin", "merchant", "Provider", ""] {
            assert_eq!(SignupRole::parse(Some(bad)), Err(SignupRoleError), "{bad}");
        }
        assert_eq!(Role::from_name("provider"), Some(Role::Provider));
    }

    #[test]
    fn role_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&Role::Merchant).unwrap(),
            "\"merchant\""
        );
        assert_eq!(Role::from_name("admin"), Some(Role::Admin));
        assert_eq!(Role::from_name("Admin"), None);
    }
}
