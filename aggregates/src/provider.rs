//! A service provider of the marketplace, identified by the provider's user id: the
//! profile (full name, phone, bio: personal data, as [`PersonalText`]), the service types
//! they offer (skills), the areas they serve, the certifications they submitted, and their
//! verification by an admin.
//!
//! Verification: `unverified` -> `pending_verification` when a certification is submitted
//! -> `verified` or `rejected` by an admin. A rejected provider submits another
//! certification to be reviewed again; a verified one stays verified when adding more.
//! Only a verified provider sees and accepts service orders, and only orders whose service
//! type is among their skills and whose area is among their areas ([`Provider::qualifies`]).

use std::fmt;
use std::str::FromStr;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    CertificationId, DomainError, ErrorKind, MediaUrl, ParseError, PersonalText, Reason, UserId,
};

/// Bounds of a provider's profile.
pub mod limits {
    /// Most service types one provider offers.
    pub const MAX_SKILLS: usize = 20;
    /// Most certifications one provider submits.
    pub const MAX_CERTIFICATIONS: usize = 20;
    /// Longest bio, in characters.
    pub const BIO_MAX: usize = 2000;
    /// Longest certification name, in characters.
    pub const CERTIFICATION_NAME_MAX: usize = 200;
}

/// A kind of home service (`plumbing`, `cleaning`, `it_support`...): 1 to 40 lowercase
/// ASCII letters, digits, `_` or `-`. Orders and skills match when they are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceType(String);

impl ServiceType {
    /// Parses a service type: trimmed and lowercased, then checked.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        let ok = (1..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(ServiceType(s))
        } else {
            Err(ParseError::new(
                "service_type",
                "service_type must be 1 to 40 letters, digits, '_' or '-'",
            ))
        }
    }

    /// The service type.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ServiceType {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ServiceType::parse(&value)
    }
}

impl From<ServiceType> for String {
    fn from(value: ServiceType) -> Self {
        value.0
    }
}

/// One of the five areas of the city a service takes place in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ServiceArea {
    /// The north.
    North,
    /// The south.
    South,
    /// The east.
    East,
    /// The west.
    West,
    /// The middle.
    Mid,
}

impl ServiceArea {
    /// Every area.
    pub const ALL: [ServiceArea; 5] = [
        ServiceArea::North,
        ServiceArea::South,
        ServiceArea::East,
        ServiceArea::West,
        ServiceArea::Mid,
    ];

    /// The name on the wire: `NORTH`, `SOUTH`, `EAST`, `WEST`, `MID`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceArea::North => "NORTH",
            ServiceArea::South => "SOUTH",
            ServiceArea::East => "EAST",
            ServiceArea::West => "WEST",
            ServiceArea::Mid => "MID",
        }
    }

    /// Parses an area name (case-insensitive).
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, ParseError> {
        let upper = raw.trim().to_ascii_uppercase();
        ServiceArea::ALL
            .into_iter()
            .find(|area| area.as_str() == upper)
            .ok_or_else(|| {
                ParseError::new(
                    field,
                    format!("{field} must be NORTH, SOUTH, EAST, WEST or MID"),
                )
            })
    }
}

impl fmt::Display for ServiceArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceArea {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceArea::parse(s, "location")
    }
}

/// Parses the skills of a profile: 1 to [`limits::MAX_SKILLS`] service types, duplicates
/// dropped, sorted.
pub fn parse_skills(raw: &[String]) -> Result<Vec<ServiceType>, ParseError> {
    if raw.len() > limits::MAX_SKILLS {
        return Err(ParseError::new(
            "skills",
            format!("skills must hold 1 to {} service types", limits::MAX_SKILLS),
        ));
    }
    let mut skills = raw
        .iter()
        .map(|s| ServiceType::parse(s).map_err(|e| ParseError::new("skills", e.message())))
        .collect::<Result<Vec<_>, _>>()?;
    skills.sort();
    skills.dedup();
    if skills.is_empty() || skills.len() > limits::MAX_SKILLS {
        return Err(ParseError::new(
            "skills",
            format!("skills must hold 1 to {} service types", limits::MAX_SKILLS),
        ));
    }
    Ok(skills)
}

/// Parses the areas of a profile: 1 to 5 areas, duplicates dropped, sorted.
pub fn parse_areas(raw: &[String]) -> Result<Vec<ServiceArea>, ParseError> {
    if raw.len() > ServiceArea::ALL.len() {
        return Err(ParseError::new(
            "service_areas",
            "service_areas must hold 1 to 5 of NORTH, SOUTH, EAST, WEST, MID",
        ));
    }
    let mut areas = raw
        .iter()
        .map(|s| ServiceArea::parse(s, "service_areas"))
        .collect::<Result<Vec<_>, _>>()?;
    areas.sort();
    areas.dedup();
    if areas.is_empty() {
        return Err(ParseError::new(
            "service_areas",
            "service_areas must hold 1 to 5 of NORTH, SOUTH, EAST, WEST, MID",
        ));
    }
    Ok(areas)
}

/// Parses a bio: at most 2000 characters, lines allowed, may be empty.
pub fn parse_bio(subject: UserId, raw: &str) -> Result<PersonalText, ParseError> {
    PersonalText::parse_text(subject, raw, "bio", 0, limits::BIO_MAX, false)
}

/// Parses a certification's name: 1 to 200 characters on one line.
pub fn parse_certification_name(raw: &str) -> Result<String, ParseError> {
    let s = raw.trim();
    if (1..=limits::CERTIFICATION_NAME_MAX).contains(&s.chars().count())
        && !s.chars().any(char::is_control)
    {
        Ok(s.to_owned())
    } else {
        Err(ParseError::new(
            "name",
            "name must be 1 to 200 characters on one line",
        ))
    }
}

/// Where a provider's verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// No certification submitted yet.
    #[default]
    Unverified,
    /// A certification waits for an admin.
    PendingVerification,
    /// An admin verified the provider.
    Verified,
    /// An admin refused the certifications submitted so far.
    Rejected,
}

impl VerificationStatus {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Unverified => "unverified",
            VerificationStatus::PendingVerification => "pending_verification",
            VerificationStatus::Verified => "verified",
            VerificationStatus::Rejected => "rejected",
        }
    }

    /// The inverse of [`VerificationStatus::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        [
            VerificationStatus::Unverified,
            VerificationStatus::PendingVerification,
            VerificationStatus::Verified,
            VerificationStatus::Rejected,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// A provider's profile: every personal field a [`PersonalText`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderProfile {
    /// The provider's full name.
    pub full_name: PersonalText,
    /// The provider's phone.
    pub phone: PersonalText,
    /// The service types offered, sorted, at least one.
    pub skills: Vec<ServiceType>,
    /// The areas served, sorted, at least one.
    pub service_areas: Vec<ServiceArea>,
    /// A free text about the provider.
    pub bio: PersonalText,
}

/// A certification submitted for verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certification {
    /// Its id.
    pub certification_id: CertificationId,
    /// What it certifies ("Licensed electrician").
    pub name: String,
    /// Where the document can be read.
    pub file_url: MediaUrl,
}

/// Commands accepted by a [`Provider`].
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderCommand {
    /// Sets the whole profile.
    SetProfile(ProviderProfile),
    /// Submits a certification; the provider then waits for verification (unless verified).
    SubmitCertification(Certification),
    /// An admin verifies the provider.
    Verify,
    /// An admin refuses the provider's certifications.
    Reject {
        /// Why.
        reason: Reason,
    },
}

/// Events of a [`Provider`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProviderEvent {
    /// The profile was set (all of it).
    ProviderProfileSet {
        /// The profile.
        profile: ProviderProfile,
    },
    /// A certification was submitted.
    CertificationSubmitted {
        /// The certification.
        certification: Certification,
    },
    /// The provider awaits verification by an admin.
    VerificationRequested {},
    /// An admin verified the provider.
    ProviderVerified {},
    /// An admin refused the provider's certifications.
    ProviderRejected {
        /// Why.
        reason: Reason,
    },
}

impl DomainEvent for ProviderEvent {
    fn event_type(&self) -> String {
        match self {
            ProviderEvent::ProviderProfileSet { .. } => "ProviderProfileSet",
            ProviderEvent::CertificationSubmitted { .. } => "CertificationSubmitted",
            ProviderEvent::VerificationRequested {} => "VerificationRequested",
            ProviderEvent::ProviderVerified {} => "ProviderVerified",
            ProviderEvent::ProviderRejected { .. } => "ProviderRejected",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`ProviderCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Certifications and verification come after the profile.
    #[error("set the provider profile first")]
    ProfileRequired,
    /// A certification with this id exists already.
    #[error("a certification with this id exists already")]
    CertificationExists,
    /// The provider has [`limits::MAX_CERTIFICATIONS`] certifications already.
    #[error("at most {} certifications", limits::MAX_CERTIFICATIONS)]
    CertificationLimitReached,
    /// Verifying or rejecting needs a certification waiting for it.
    #[error("the provider is {0}, not pending verification")]
    NotPendingVerification(&'static str),
}

impl ProviderError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::ProfileRequired => "profile_required",
            ProviderError::CertificationExists => "certification_exists",
            ProviderError::CertificationLimitReached => "certification_limit_reached",
            ProviderError::NotPendingVerification(_) => "not_pending_verification",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Refused
    }
}

impl DomainError for ProviderError {
    fn code(&self) -> &'static str {
        ProviderError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        ProviderError::kind(self)
    }
}

/// What a service order needs to know of the provider who accepts it, read from the
/// provider's aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualification {
    /// The provider's verification.
    pub status: VerificationStatus,
    /// Their skills.
    pub skills: Vec<ServiceType>,
    /// Their areas.
    pub service_areas: Vec<ServiceArea>,
}

impl Qualification {
    /// Whether the provider may take an order of `service_type` in `area`: verified, with
    /// the skill and the area.
    pub fn matches(&self, service_type: &ServiceType, area: ServiceArea) -> bool {
        self.status == VerificationStatus::Verified
            && self.skills.contains(service_type)
            && self.service_areas.contains(&area)
    }
}

/// A service provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    profile: Option<ProviderProfile>,
    certifications: Vec<Certification>,
    status: VerificationStatus,
    rejection: Option<Reason>,
}

impl Provider {
    /// The profile, once set.
    pub fn profile(&self) -> Option<&ProviderProfile> {
        self.profile.as_ref()
    }

    /// The certifications, oldest first.
    pub fn certifications(&self) -> &[Certification] {
        &self.certifications
    }

    /// The verification.
    pub fn status(&self) -> VerificationStatus {
        self.status
    }

    /// Why the last rejection was made, while rejected.
    pub fn rejection(&self) -> Option<&Reason> {
        self.rejection.as_ref()
    }

    /// What a service order checks when this provider accepts it.
    pub fn qualification(&self) -> Qualification {
        Qualification {
            status: self.status,
            skills: self
                .profile
                .as_ref()
                .map(|p| p.skills.clone())
                .unwrap_or_default(),
            service_areas: self
                .profile
                .as_ref()
                .map(|p| p.service_areas.clone())
                .unwrap_or_default(),
        }
    }

    /// Whether this provider may take an order of `service_type` in `area`.
    pub fn qualifies(&self, service_type: &ServiceType, area: ServiceArea) -> bool {
        self.qualification().matches(service_type, area)
    }
}

impl Aggregate for Provider {
    const TYPE: &'static str = "provider";
    type Command = ProviderCommand;
    type Event = ProviderEvent;
    type Error = ProviderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let mut events = Vec::new();
        match command {
            ProviderCommand::SetProfile(profile) => {
                if self.profile.as_ref() != Some(&profile) {
                    events.push(ProviderEvent::ProviderProfileSet { profile });
                }
            }
            ProviderCommand::SubmitCertification(certification) => {
                if self.profile.is_none() {
                    return Err(ProviderError::ProfileRequired);
                }
                if let Some(existing) = self
                    .certifications
                    .iter()
                    .find(|c| c.certification_id == certification.certification_id)
                {
                    // The same submission repeated is a no-op; another under its id is not.
                    if *existing == certification {
                        return Ok(());
                    }
                    return Err(ProviderError::CertificationExists);
                }
                if self.certifications.len() >= limits::MAX_CERTIFICATIONS {
                    return Err(ProviderError::CertificationLimitReached);
                }
                events.push(ProviderEvent::CertificationSubmitted { certification });
                if matches!(
                    self.status,
                    VerificationStatus::Unverified | VerificationStatus::Rejected
                ) {
                    events.push(ProviderEvent::VerificationRequested {});
                }
            }
            ProviderCommand::Verify => match self.status {
                VerificationStatus::Verified => {}
                VerificationStatus::PendingVerification => {
                    events.push(ProviderEvent::ProviderVerified {});
                }
                other => return Err(ProviderError::NotPendingVerification(other.as_str())),
            },
            ProviderCommand::Reject { reason } => match self.status {
                VerificationStatus::PendingVerification => {
                    events.push(ProviderEvent::ProviderRejected { reason });
                }
                VerificationStatus::Rejected if self.rejection.as_ref() == Some(&reason) => {}
                other => return Err(ProviderError::NotPendingVerification(other.as_str())),
            },
        }
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProviderEvent::ProviderProfileSet { profile } => self.profile = Some(profile),
            ProviderEvent::CertificationSubmitted { certification } => {
                self.certifications.push(certification);
            }
            ProviderEvent::VerificationRequested {} => {
                self.status = VerificationStatus::PendingVerification;
                self.rejection = None;
            }
            ProviderEvent::ProviderVerified {} => {
                self.status = VerificationStatus::Verified;
                self.rejection = None;
            }
            ProviderEvent::ProviderRejected { reason } => {
                self.status = VerificationStatus::Rejected;
                self.rejection = Some(reason);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};
    use uuid::Uuid;

    use super::*;

    fn given(events: Vec<ProviderEvent>) -> AggregateTestExecutor<Provider> {
        TestFramework::<Provider>::with(()).given(events)
    }

    fn subject() -> UserId {
        UserId::from(Uuid::from_u128(1))
    }

    pub(crate) fn profile() -> ProviderProfile {
        ProviderProfile {
            full_name: PersonalText::clear(subject(), "Pat Plumber"),
            phone: PersonalText::clear(subject(), "+49 30 1234567"),
            skills: vec![ServiceType::parse("plumbing").unwrap()],
            service_areas: vec![ServiceArea::North, ServiceArea::Mid],
            bio: PersonalText::clear(subject(), "Twenty years of pipes."),
        }
    }

    fn certification(n: u128) -> Certification {
        Certification {
            certification_id: CertificationId::from(Uuid::from_u128(100 + n)),
            name: "Master plumber".into(),
            file_url: MediaUrl::parse("https://files.example.com/cert.pdf").unwrap(),
        }
    }

    fn profile_set() -> ProviderEvent {
        ProviderEvent::ProviderProfileSet { profile: profile() }
    }

    fn submitted(n: u128) -> ProviderEvent {
        ProviderEvent::CertificationSubmitted {
            certification: certification(n),
        }
    }

    fn reason() -> Reason {
        Reason::parse("the document is unreadable").unwrap()
    }

    #[test]
    fn skills_and_areas_are_bounded_before_duplicates_are_dropped() {
        let texts = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_areas(&texts(&["mid", "MID", "north"])).unwrap(),
            vec![ServiceArea::North, ServiceArea::Mid]
        );
        assert!(parse_areas(&texts(&["MID"; 6])).is_err());
        assert!(parse_areas(&[]).is_err());
        assert_eq!(
            parse_skills(&texts(&["Plumbing", "plumbing"]))
                .unwrap()
                .len(),
            1
        );
        assert!(parse_skills(&texts(&["plumbing"; 21])).is_err());
    }

    #[test]
    fn setting_the_profile_records_it_once() {
        given(vec![])
            .when(ProviderCommand::SetProfile(profile()))
            .then_expect_events(vec![profile_set()]);
        given(vec![profile_set()])
            .when(ProviderCommand::SetProfile(profile()))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_certification_needs_a_profile_and_requests_verification() {
        given(vec![])
            .when(ProviderCommand::SubmitCertification(certification(1)))
            .then_expect_error(ProviderError::ProfileRequired);
        given(vec![profile_set()])
            .when(ProviderCommand::SubmitCertification(certification(1)))
            .then_expect_events(vec![submitted(1), ProviderEvent::VerificationRequested {}]);
    }

    #[test]
    fn a_repeated_certification_is_a_no_op_and_another_under_its_id_is_refused() {
        let history = vec![
            profile_set(),
            submitted(1),
            ProviderEvent::VerificationRequested {},
        ];
        given(history.clone())
            .when(ProviderCommand::SubmitCertification(certification(1)))
            .then_expect_events(vec![]);
        let mut other = certification(1);
        other.name = "Electrician".into();
        given(history)
            .when(ProviderCommand::SubmitCertification(other))
            .then_expect_error(ProviderError::CertificationExists);
    }

    #[test]
    fn an_admin_verifies_or_rejects_only_a_pending_provider() {
        let pending = vec![
            profile_set(),
            submitted(1),
            ProviderEvent::VerificationRequested {},
        ];
        given(pending.clone())
            .when(ProviderCommand::Verify)
            .then_expect_events(vec![ProviderEvent::ProviderVerified {}]);
        given(pending.clone())
            .when(ProviderCommand::Reject { reason: reason() })
            .then_expect_events(vec![ProviderEvent::ProviderRejected { reason: reason() }]);
        given(vec![profile_set()])
            .when(ProviderCommand::Verify)
            .then_expect_error(ProviderError::NotPendingVerification("unverified"));
        let mut verified = pending;
        verified.push(ProviderEvent::ProviderVerified {});
        given(verified.clone())
            .when(ProviderCommand::Verify)
            .then_expect_events(vec![]);
        given(verified)
            .when(ProviderCommand::Reject { reason: reason() })
            .then_expect_error(ProviderError::NotPendingVerification("verified"));
    }

    #[test]
    fn a_rejected_provider_submits_again_and_a_verified_one_stays_verified() {
        let rejected = vec![
            profile_set(),
            submitted(1),
            ProviderEvent::VerificationRequested {},
            ProviderEvent::ProviderRejected { reason: reason() },
        ];
        given(rejected)
            .when(ProviderCommand::SubmitCertification(certification(2)))
            .then_expect_events(vec![submitted(2), ProviderEvent::VerificationRequested {}]);
        let verified = vec![
            profile_set(),
            submitted(1),
            ProviderEvent::VerificationRequested {},
            ProviderEvent::ProviderVerified {},
        ];
        given(verified)
            .when(ProviderCommand::SubmitCertification(certification(2)))
            .then_expect_events(vec![submitted(2)]);
    }

    #[test]
    fn only_a_verified_provider_with_the_skill_and_area_qualifies() {
        let mut provider = Provider::default();
        for event in [
            profile_set(),
            submitted(1),
            ProviderEvent::VerificationRequested {},
        ] {
            provider.apply(event);
        }
        let plumbing = ServiceType::parse("plumbing").unwrap();
        assert!(!provider.qualifies(&plumbing, ServiceArea::North));
        provider.apply(ProviderEvent::ProviderVerified {});
        assert!(provider.qualifies(&plumbing, ServiceArea::North));
        assert!(!provider.qualifies(&plumbing, ServiceArea::South));
        assert!(!provider.qualifies(&ServiceType::parse("cleaning").unwrap(), ServiceArea::Mid));
    }

    #[test]
    fn skills_areas_and_service_types_are_parsed() {
        assert_eq!(
            parse_skills(&["Plumbing".into(), "plumbing".into(), "it_support".into()]).unwrap(),
            vec![
                ServiceType::parse("it_support").unwrap(),
                ServiceType::parse("plumbing").unwrap()
            ]
        );
        assert_eq!(parse_skills(&[]).unwrap_err().field(), "skills");
        assert_eq!(parse_skills(&["a b".into()]).unwrap_err().field(), "skills");
        assert_eq!(
            parse_areas(&["north".into(), "MID".into(), "NORTH".into()]).unwrap(),
            vec![ServiceArea::North, ServiceArea::Mid]
        );
        assert_eq!(
            parse_areas(&["UP".into()]).unwrap_err().field(),
            "service_areas"
        );
        assert_eq!(
            serde_json::to_value(ServiceArea::Mid).unwrap(),
            serde_json::json!("MID")
        );
        assert!(ServiceType::parse(&"a".repeat(41)).is_err());
        assert!(parse_certification_name("").is_err());
    }
}
