//! A show and its sessions: what is played, where, and for each session its start time
//! and seat areas with their price and capacity. Seats themselves are counted by the
//! inventory item of each session's area.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    AreaId, AreaName, Category, City, Description, DomainError, ErrorKind, Money, SessionId,
    ShowId, Sku, Title, Venue,
};

/// Largest number of seats in one area.
pub const MAX_AREA_CAPACITY: u32 = 100_000;

/// An area of seats sold at one price within a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatArea {
    /// The area's id, unique within its session.
    pub area_id: AreaId,
    /// Name shown to fans.
    pub name: AreaName,
    /// Price of one seat.
    pub price: Money,
    /// Number of seats, 1 to 100,000.
    pub capacity: u32,
}

/// One performance of a show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// Its seat areas.
    pub seat_areas: Vec<SeatArea>,
}

impl Session {
    /// A seat area by id.
    pub fn area(&self, area_id: &AreaId) -> Option<&SeatArea> {
        self.seat_areas.iter().find(|a| &a.area_id == area_id)
    }
}

/// A session a command adds: its id, start and seat areas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    /// The session's id, unique within the show.
    pub session_id: SessionId,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// Its seat areas: at least one, ids unique.
    pub seat_areas: Vec<SeatArea>,
}

/// Commands accepted by a [`Show`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShowCommand {
    /// Creates the show.
    Create {
        /// The show's id (also the aggregate id).
        show_id: ShowId,
        /// Title.
        title: Title,
        /// Category, e.g. "concert".
        category: Category,
        /// City.
        city: City,
        /// Venue.
        venue: Venue,
        /// Longer description.
        description: Description,
        /// Sessions added with it, in order (each recorded as its own `SessionAdded`).
        /// Repeating the creation with the same fields adds the sessions still missing.
        #[serde(default)]
        sessions: Vec<NewSession>,
    },
    /// Changes some of the show's fields; absent fields stay as they are.
    Update {
        /// New title.
        title: Option<Title>,
        /// New category.
        category: Option<Category>,
        /// New city.
        city: Option<City>,
        /// New venue.
        venue: Option<Venue>,
        /// New description.
        description: Option<Description>,
    },
    /// Adds a session with its seat areas.
    AddSession {
        /// The session's id, unique within the show.
        session_id: SessionId,
        /// When it starts.
        starts_at: DateTime<Utc>,
        /// Its seat areas: at least one, ids unique.
        seat_areas: Vec<SeatArea>,
    },
    /// Changes the name, price or capacity of a seat area.
    ChangeSeatArea {
        /// The session.
        session_id: SessionId,
        /// The area.
        area_id: AreaId,
        /// New name.
        name: Option<AreaName>,
        /// New price of one seat.
        price: Option<Money>,
        /// New number of seats, 1 to 100,000.
        capacity: Option<u32>,
    },
}

/// Events of a [`Show`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShowEvent {
    /// The show was created.
    ShowCreated {
        /// The show's id.
        show_id: ShowId,
        /// Title.
        title: Title,
        /// Category.
        category: Category,
        /// City.
        city: City,
        /// Venue.
        venue: Venue,
        /// Longer description.
        description: Description,
    },
    /// Some fields of the show changed; only changed fields are present.
    ShowUpdated {
        /// New title, if it changed.
        #[serde(default)]
        title: Option<Title>,
        /// New category, if it changed.
        #[serde(default)]
        category: Option<Category>,
        /// New city, if it changed.
        #[serde(default)]
        city: Option<City>,
        /// New venue, if it changed.
        #[serde(default)]
        venue: Option<Venue>,
        /// New description, if it changed.
        #[serde(default)]
        description: Option<Description>,
    },
    /// A session was added.
    SessionAdded {
        /// The session's id.
        session_id: SessionId,
        /// When it starts.
        starts_at: DateTime<Utc>,
        /// Its seat areas.
        seat_areas: Vec<SeatArea>,
    },
    /// A seat area changed; only changed fields are present.
    SeatAreaChanged {
        /// The session.
        session_id: SessionId,
        /// The area.
        area_id: AreaId,
        /// New name, if it changed.
        #[serde(default)]
        name: Option<AreaName>,
        /// New price, if it changed.
        #[serde(default)]
        price: Option<Money>,
        /// New capacity, if it changed.
        #[serde(default)]
        capacity: Option<u32>,
    },
}

impl DomainEvent for ShowEvent {
    fn event_type(&self) -> String {
        match self {
            ShowEvent::ShowCreated { .. } => "ShowCreated",
            ShowEvent::ShowUpdated { .. } => "ShowUpdated",
            ShowEvent::SessionAdded { .. } => "SessionAdded",
            ShowEvent::SeatAreaChanged { .. } => "SeatAreaChanged",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`ShowCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShowError {
    /// The show already exists.
    #[error("show already exists")]
    AlreadyExists,
    /// The show was never created.
    #[error("show not found")]
    ShowNotFound,
    /// A session needs at least one seat area.
    #[error("a session needs at least one seat area")]
    NoSeatAreas,
    /// The same area id appears twice in a session.
    #[error("seat area {area_id} appears more than once")]
    DuplicateArea {
        /// The repeated area id.
        area_id: AreaId,
    },
    /// A capacity is outside 1..=100,000.
    #[error("capacity must be 1 to 100000 seats, got {capacity}")]
    InvalidCapacity {
        /// The capacity given.
        capacity: u32,
    },
    /// The session id is already used with other content.
    #[error("session {session_id} already exists")]
    SessionExists {
        /// The session.
        session_id: SessionId,
    },
    /// The show has no such session.
    #[error("session not found")]
    SessionNotFound,
    /// The session has no such seat area.
    #[error("seat area not found")]
    AreaNotFound,
}

impl ShowError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ShowError::AlreadyExists => "show_exists",
            ShowError::ShowNotFound => "show_not_found",
            ShowError::NoSeatAreas => "no_seat_areas",
            ShowError::DuplicateArea { .. } => "duplicate_area",
            ShowError::InvalidCapacity { .. } => "invalid_capacity",
            ShowError::SessionExists { .. } => "session_exists",
            ShowError::SessionNotFound => "session_not_found",
            ShowError::AreaNotFound => "area_not_found",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShowError::AlreadyExists | ShowError::SessionExists { .. } => ErrorKind::Refused,
            ShowError::NoSeatAreas
            | ShowError::DuplicateArea { .. }
            | ShowError::InvalidCapacity { .. } => ErrorKind::Invalid,
            ShowError::ShowNotFound | ShowError::SessionNotFound | ShowError::AreaNotFound => {
                ErrorKind::NotFound
            }
        }
    }
}

impl DomainError for ShowError {
    fn code(&self) -> &'static str {
        ShowError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        ShowError::kind(self)
    }
}

/// The descriptive fields of a show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowDetails {
    /// The show's id.
    pub show_id: ShowId,
    /// Title.
    pub title: Title,
    /// Category.
    pub category: Category,
    /// City.
    pub city: City,
    /// Venue.
    pub venue: Venue,
    /// Longer description.
    pub description: Description,
}

/// A show with its sessions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Show {
    details: Option<ShowDetails>,
    sessions: BTreeMap<SessionId, Session>,
}

impl Show {
    /// The show's fields, once created.
    pub fn details(&self) -> Option<&ShowDetails> {
        self.details.as_ref()
    }

    /// True once created.
    pub fn exists(&self) -> bool {
        self.details.is_some()
    }

    /// Every session by id.
    pub fn sessions(&self) -> &BTreeMap<SessionId, Session> {
        &self.sessions
    }

    /// A session by id.
    pub fn session(&self, session_id: &SessionId) -> Option<&Session> {
        self.sessions.get(session_id)
    }

    /// A seat area of a session.
    pub fn seat_area(&self, session_id: &SessionId, area_id: &AreaId) -> Option<&SeatArea> {
        self.session(session_id).and_then(|s| s.area(area_id))
    }

    /// The `SessionAdded` that adding `session` records, `None` when the same session is
    /// there already.
    fn session_added(&self, session: NewSession) -> Result<Option<ShowEvent>, ShowError> {
        let NewSession {
            session_id,
            starts_at,
            seat_areas,
        } = session;
        if self.details.is_none() {
            return Err(ShowError::ShowNotFound);
        }
        if seat_areas.is_empty() {
            return Err(ShowError::NoSeatAreas);
        }
        let mut seen = BTreeSet::new();
        for area in &seat_areas {
            if !seen.insert(&area.area_id) {
                return Err(ShowError::DuplicateArea {
                    area_id: area.area_id.clone(),
                });
            }
            check_capacity(area.capacity)?;
        }
        if let Some(existing) = self.sessions.get(&session_id) {
            return if existing.starts_at == starts_at && existing.seat_areas == seat_areas {
                Ok(None)
            } else {
                Err(ShowError::SessionExists { session_id })
            };
        }
        Ok(Some(ShowEvent::SessionAdded {
            session_id,
            starts_at,
            seat_areas,
        }))
    }
}

/// Whether `sku` has the shape of a seat area's inventory id ([`seat_inventory_id`]):
/// `S`, the session's 32 hex digits, `-`, the area.
pub fn is_seat_inventory_id(sku: &str) -> bool {
    let bytes = sku.as_bytes();
    bytes.len() > 34
        && bytes[0] == b'S'
        && bytes[33] == b'-'
        && bytes[1..33]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
}

/// The inventory item counting the seats of one area of one session.
///
/// Inventory ids are SKUs (at most 64 of `[A-Za-z0-9_-]`, uppercased, NATS subject tokens),
/// while area ids are case-sensitive and may be 64 characters long: an area id that would
/// not survive uppercasing or would not fit is replaced by a digest of it, so two areas
/// never share seats.
pub fn seat_inventory_id(session_id: SessionId, area_id: &AreaId) -> Sku {
    let session = session_id
        .as_uuid()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    let area = area_id.as_str();
    let readable = area.len() <= 26 && !area.bytes().any(|b| b.is_ascii_lowercase());
    let suffix = if readable {
        area.to_string()
    } else {
        let digest = uuid::Uuid::new_v5(session_id.as_uuid(), area.as_bytes());
        format!("H{}", &digest.simple().to_string()[..16]).to_ascii_uppercase()
    };
    Sku::parse(&format!("S{session}-{suffix}")).expect("seat inventory ids are valid SKUs")
}

fn check_capacity(capacity: u32) -> Result<(), ShowError> {
    if (1..=MAX_AREA_CAPACITY).contains(&capacity) {
        Ok(())
    } else {
        Err(ShowError::InvalidCapacity { capacity })
    }
}

/// `Some(new)` when `new` is given and differs from `current`.
fn changed<T: PartialEq>(current: &T, new: Option<T>) -> Option<T> {
    new.filter(|n| n != current)
}

impl Aggregate for Show {
    const TYPE: &'static str = "show";
    type Command = ShowCommand;
    type Event = ShowEvent;
    type Error = ShowError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ShowCommand::Create {
                show_id,
                title,
                category,
                city,
                venue,
                description,
                sessions,
            } => {
                let details = ShowDetails {
                    show_id,
                    title,
                    category,
                    city,
                    venue,
                    description,
                };
                // Every event is decided on a draft first, so that a refused session
                // leaves the show untouched.
                let mut draft = self.clone();
                let mut events = Vec::new();
                match &self.details {
                    Some(existing) if *existing != details || sessions.is_empty() => {
                        return Err(ShowError::AlreadyExists)
                    }
                    Some(_) => {}
                    None => {
                        let created = ShowEvent::ShowCreated {
                            show_id: details.show_id,
                            title: details.title,
                            category: details.category,
                            city: details.city,
                            venue: details.venue,
                            description: details.description,
                        };
                        draft.apply(created.clone());
                        events.push(created);
                    }
                }
                for session in sessions {
                    if let Some(added) = draft.session_added(session)? {
                        draft.apply(added.clone());
                        events.push(added);
                    }
                }
                for event in events {
                    sink.write(event, self).await;
                }
                return Ok(());
            }
            ShowCommand::Update {
                title,
                category,
                city,
                venue,
                description,
            } => {
                let d = self.details.as_ref().ok_or(ShowError::ShowNotFound)?;
                let title = changed(&d.title, title);
                let category = changed(&d.category, category);
                let city = changed(&d.city, city);
                let venue = changed(&d.venue, venue);
                let description = changed(&d.description, description);
                if title.is_none()
                    && category.is_none()
                    && city.is_none()
                    && venue.is_none()
                    && description.is_none()
                {
                    return Ok(());
                }
                ShowEvent::ShowUpdated {
                    title,
                    category,
                    city,
                    venue,
                    description,
                }
            }
            ShowCommand::AddSession {
                session_id,
                starts_at,
                seat_areas,
            } => match self.session_added(NewSession {
                session_id,
                starts_at,
                seat_areas,
            })? {
                Some(added) => added,
                None => return Ok(()),
            },
            ShowCommand::ChangeSeatArea {
                session_id,
                area_id,
                name,
                price,
                capacity,
            } => {
                if self.details.is_none() {
                    return Err(ShowError::ShowNotFound);
                }
                if let Some(c) = capacity {
                    check_capacity(c)?;
                }
                let area = self
                    .sessions
                    .get(&session_id)
                    .ok_or(ShowError::SessionNotFound)?
                    .area(&area_id)
                    .ok_or(ShowError::AreaNotFound)?;
                let name = changed(&area.name, name);
                let price = changed(&area.price, price);
                let capacity = changed(&area.capacity, capacity);
                if name.is_none() && price.is_none() && capacity.is_none() {
                    return Ok(());
                }
                ShowEvent::SeatAreaChanged {
                    session_id,
                    area_id,
                    name,
                    price,
                    capacity,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ShowEvent::ShowCreated {
                show_id,
                title,
                category,
                city,
                venue,
                description,
            } => {
                self.details = Some(ShowDetails {
                    show_id,
                    title,
                    category,
                    city,
                    venue,
                    description,
                });
            }
            ShowEvent::ShowUpdated {
                title,
                category,
                city,
                venue,
                description,
            } => {
                if let Some(d) = self.details.as_mut() {
                    if let Some(v) = title {
                        d.title = v;
                    }
                    if let Some(v) = category {
                        d.category = v;
                    }
                    if let Some(v) = city {
                        d.city = v;
                    }
                    if let Some(v) = venue {
                        d.venue = v;
                    }
                    if let Some(v) = description {
                        d.description = v;
                    }
                }
            }
            ShowEvent::SessionAdded {
                session_id,
                starts_at,
                seat_areas,
            } => {
                self.sessions.insert(
                    session_id,
                    Session {
                        starts_at,
                        seat_areas,
                    },
                );
            }
            ShowEvent::SeatAreaChanged {
                session_id,
                area_id,
                name,
                price,
                capacity,
            } => {
                let area = self
                    .sessions
                    .get_mut(&session_id)
                    .and_then(|s| s.seat_areas.iter_mut().find(|a| a.area_id == area_id));
                if let Some(a) = area {
                    if let Some(v) = name {
                        a.name = v;
                    }
                    if let Some(v) = price {
                        a.price = v;
                    }
                    if let Some(v) = capacity {
                        a.capacity = v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<ShowEvent>) -> AggregateTestExecutor<Show> {
        TestFramework::<Show>::with(()).given(events)
    }

    fn created() -> ShowEvent {
        ShowEvent::ShowCreated {
            show_id: id(1),
            title: Title::parse("Hamlet").unwrap(),
            category: Category::parse("Theatre").unwrap(),
            city: City::parse("Lyon").unwrap(),
            venue: Venue::parse("Opera").unwrap(),
            description: Description::parse("").unwrap(),
        }
    }

    fn create() -> ShowCommand {
        ShowCommand::Create {
            show_id: id(1),
            title: Title::parse("Hamlet").unwrap(),
            category: Category::parse("Theatre").unwrap(),
            city: City::parse("Lyon").unwrap(),
            venue: Venue::parse("Opera").unwrap(),
            description: Description::parse("").unwrap(),
            sessions: vec![],
        }
    }

    fn area(a: &str, capacity: u32) -> SeatArea {
        SeatArea {
            area_id: AreaId::parse(a).unwrap(),
            name: AreaName::parse(a).unwrap(),
            price: eur(5000),
            capacity,
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 1, 20, 0, 0).unwrap()
    }

    fn s(n: u128) -> SessionId {
        id(n)
    }

    fn add_session(areas: Vec<SeatArea>) -> ShowCommand {
        ShowCommand::AddSession {
            session_id: s(10),
            starts_at: at(),
            seat_areas: areas,
        }
    }

    fn session_added() -> ShowEvent {
        ShowEvent::SessionAdded {
            session_id: s(10),
            starts_at: at(),
            seat_areas: vec![area("A", 100), area("B", 50)],
        }
    }

    fn change(name: Option<&str>, price: Option<Money>, capacity: Option<u32>) -> ShowCommand {
        ShowCommand::ChangeSeatArea {
            session_id: s(10),
            area_id: AreaId::parse("A").unwrap(),
            name: name.map(|n| AreaName::parse(n).unwrap()),
            price,
            capacity,
        }
    }

    fn update(title: Option<&str>, city: Option<&str>) -> ShowCommand {
        ShowCommand::Update {
            title: title.map(|t| Title::parse(t).unwrap()),
            category: None,
            city: city.map(|c| City::parse(c).unwrap()),
            venue: None,
            description: None,
        }
    }

    #[test]
    fn create_records_the_show() {
        given(vec![])
            .when(create())
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn create_refuses_an_existing_show() {
        let err = given(vec![created()])
            .when(create())
            .inspect_result()
            .unwrap_err();
        assert_eq!(err, ShowError::AlreadyExists);
        assert_eq!(err.code(), "show_exists");
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    fn create_with_sessions(sessions: Vec<NewSession>) -> ShowCommand {
        let ShowCommand::Create {
            show_id,
            title,
            category,
            city,
            venue,
            description,
            ..
        } = create()
        else {
            unreachable!()
        };
        ShowCommand::Create {
            show_id,
            title,
            category,
            city,
            venue,
            description,
            sessions,
        }
    }

    fn new_session(n: u128, areas: Vec<SeatArea>) -> NewSession {
        NewSession {
            session_id: s(n),
            starts_at: at(),
            seat_areas: areas,
        }
    }

    #[test]
    fn create_with_sessions_records_the_show_then_each_session() {
        given(vec![])
            .when(create_with_sessions(vec![new_session(
                10,
                vec![area("A", 100), area("B", 50)],
            )]))
            .then_expect_events(vec![created(), session_added()]);
    }

    #[test]
    fn create_repeated_with_sessions_adds_only_the_missing_ones() {
        given(vec![created(), session_added()])
            .when(create_with_sessions(vec![
                new_session(10, vec![area("A", 100), area("B", 50)]),
                new_session(11, vec![area("C", 5)]),
            ]))
            .then_expect_events(vec![ShowEvent::SessionAdded {
                session_id: s(11),
                starts_at: at(),
                seat_areas: vec![area("C", 5)],
            }]);
    }

    #[test]
    fn create_with_a_refused_session_records_nothing() {
        given(vec![])
            .when(create_with_sessions(vec![
                new_session(10, vec![area("A", 1)]),
                new_session(11, vec![]),
            ]))
            .then_expect_error(ShowError::NoSeatAreas);
        given(vec![])
            .when(create_with_sessions(vec![
                new_session(10, vec![area("A", 1)]),
                new_session(10, vec![area("B", 1)]),
            ]))
            .then_expect_error(ShowError::SessionExists { session_id: s(10) });
    }

    #[test]
    fn update_records_only_changed_fields() {
        given(vec![created()])
            .when(update(Some("Hamlet"), Some("Paris")))
            .then_expect_events(vec![ShowEvent::ShowUpdated {
                title: None,
                category: None,
                city: Some(City::parse("Paris").unwrap()),
                venue: None,
                description: None,
            }]);
    }

    #[test]
    fn update_that_changes_nothing_is_a_no_op() {
        given(vec![created()])
            .when(update(Some("Hamlet"), Some("Lyon")))
            .then_expect_events(vec![]);
    }

    #[test]
    fn commands_on_a_show_never_created_are_not_found() {
        for c in [
            update(Some("X"), None),
            add_session(vec![area("A", 1)]),
            change(Some("X"), None, None),
        ] {
            let err = given(vec![]).when(c).inspect_result().unwrap_err();
            assert_eq!(err, ShowError::ShowNotFound);
            assert_eq!(err.kind(), ErrorKind::NotFound);
        }
    }

    #[test]
    fn add_session_records_its_areas() {
        given(vec![created()])
            .when(add_session(vec![area("A", 100), area("B", 50)]))
            .then_expect_events(vec![session_added()]);
        let mut show = Show::default();
        show.apply(created());
        show.apply(session_added());
        let a = show
            .seat_area(&s(10), &AreaId::parse("B").unwrap())
            .unwrap();
        assert_eq!(a.capacity, 50);
    }

    #[test]
    fn add_session_refuses_no_areas() {
        given(vec![created()])
            .when(add_session(vec![]))
            .then_expect_error(ShowError::NoSeatAreas);
    }

    #[test]
    fn add_session_refuses_duplicate_area_ids() {
        given(vec![created()])
            .when(add_session(vec![area("A", 1), area("A", 2)]))
            .then_expect_error(ShowError::DuplicateArea {
                area_id: AreaId::parse("A").unwrap(),
            });
    }

    #[test]
    fn add_session_refuses_capacities_out_of_bounds() {
        given(vec![created()])
            .when(add_session(vec![area("A", 0)]))
            .then_expect_error(ShowError::InvalidCapacity { capacity: 0 });
        given(vec![created()])
            .when(add_session(vec![area("A", 100_001)]))
            .then_expect_error(ShowError::InvalidCapacity { capacity: 100_001 });
        given(vec![created()])
            .when(add_session(vec![area("A", 100_000)]))
            .then_expect_events(vec![ShowEvent::SessionAdded {
                session_id: s(10),
                starts_at: at(),
                seat_areas: vec![area("A", 100_000)],
            }]);
    }

    #[test]
    fn add_session_repeated_identically_is_a_no_op() {
        given(vec![created(), session_added()])
            .when(add_session(vec![area("A", 100), area("B", 50)]))
            .then_expect_events(vec![]);
    }

    #[test]
    fn add_session_with_a_used_id_is_refused() {
        given(vec![created(), session_added()])
            .when(add_session(vec![area("A", 100)]))
            .then_expect_error(ShowError::SessionExists { session_id: s(10) });
    }

    #[test]
    fn change_seat_area_records_only_changes() {
        given(vec![created(), session_added()])
            .when(change(Some("A"), Some(eur(6000)), Some(100)))
            .then_expect_events(vec![ShowEvent::SeatAreaChanged {
                session_id: s(10),
                area_id: AreaId::parse("A").unwrap(),
                name: None,
                price: Some(eur(6000)),
                capacity: None,
            }]);
    }

    #[test]
    fn change_seat_area_is_applied() {
        let mut show = Show::default();
        show.apply(created());
        show.apply(session_added());
        show.apply(ShowEvent::SeatAreaChanged {
            session_id: s(10),
            area_id: AreaId::parse("A").unwrap(),
            name: Some(AreaName::parse("Stalls").unwrap()),
            price: None,
            capacity: Some(120),
        });
        let a = show
            .seat_area(&s(10), &AreaId::parse("A").unwrap())
            .unwrap();
        assert_eq!((a.name.as_str(), a.capacity), ("Stalls", 120));
    }

    #[test]
    fn change_seat_area_that_changes_nothing_is_a_no_op() {
        given(vec![created(), session_added()])
            .when(change(None, Some(eur(5000)), None))
            .then_expect_events(vec![]);
    }

    #[test]
    fn change_seat_area_refuses_unknown_session_or_area_and_bad_capacity() {
        given(vec![created()])
            .when(change(Some("X"), None, None))
            .then_expect_error(ShowError::SessionNotFound);
        given(vec![created(), session_added()])
            .when(ShowCommand::ChangeSeatArea {
                session_id: s(10),
                area_id: AreaId::parse("Z").unwrap(),
                name: None,
                price: None,
                capacity: Some(3),
            })
            .then_expect_error(ShowError::AreaNotFound);
        given(vec![created(), session_added()])
            .when(change(None, None, Some(0)))
            .then_expect_error(ShowError::InvalidCapacity { capacity: 0 });
    }

    #[test]
    fn seat_inventory_ids_are_recognised_and_product_skus_are_not() {
        for area in ["A", "stalls", "BALCONY-2", &"x".repeat(64)] {
            let sku = seat_inventory_id(s(10), &AreaId::parse(area).unwrap());
            assert!(is_seat_inventory_id(sku.as_str()), "{sku:?}");
        }
        for sku in [
            "HP-1",
            "S-1",
            "SHIRT-RED-XL",
            &format!("S{}", "A".repeat(40)),
        ] {
            assert!(!is_seat_inventory_id(sku), "{sku}");
        }
    }
}
