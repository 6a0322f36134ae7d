//! Stock of one item: goods identified by their SKU, or the seats of one area of a show
//! session. Stock is reserved by an order or a booking, then either committed (sold) or
//! released; a committed sale that is refunded returns its stock. Every step is
//! idempotent per reservation, so a saga that repeats a step after a crash changes nothing.
//!
//! A reservation of seats may carry the booking it decides ([`SeatHold`]: who holds the
//! seats, at what price, until when), so that the seat area's single writer decides a
//! buyer in one step and the booking follows from the reservation's event.
//!
//! An item may have a safety threshold (安全库存): when a step takes the units available
//! below it, the item records `StockBelowThreshold` once; it records it again only after
//! the units available came back to the threshold or above (once per crossing).
//!
//! The item's serialized state (what a snapshot stores) packs its reservations into one
//! string ([`compact_reservations`]), since a SKU sold a hundred thousand times keeps a
//! hundred thousand of them; the earlier form, a map by reservation id, still reads.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::common::{
    AreaId, DomainError, ErrorKind, Money, Quantity, ReservationId, SessionId, ShowId, Sku, UserId,
};

/// The booking a reservation of seats is for, recorded with the reservation: the booking
/// (whose id is the reservation's) is requested and held from it, at once or, after a
/// crash, when its event is handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatHold {
    /// Who books.
    pub customer_id: UserId,
    /// The show.
    pub show_id: ShowId,
    /// The session.
    pub session_id: SessionId,
    /// The seat area.
    pub area_id: AreaId,
    /// Price of one seat.
    pub unit_price: Money,
    /// Payment deadline of the booking.
    pub expires_at: DateTime<Utc>,
}

/// Commands accepted by an [`InventoryItem`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InventoryCommand {
    /// Adds physical stock.
    Restock {
        /// The item being restocked.
        sku: Sku,
        /// Units added.
        quantity: Quantity,
    },
    /// Puts an item on sale with its initial stock, once: the seats of a session area are
    /// opened when the session is added, and opening again (a repeated request, a retry
    /// after a crash) changes nothing, unlike [`InventoryCommand::Restock`].
    Open {
        /// The item being opened.
        sku: Sku,
        /// Its initial stock.
        quantity: Quantity,
    },
    /// Asks whether `quantity` units are available, changing nothing: refused with
    /// `InsufficientStock` when they are not.
    Check {
        /// Units wanted.
        quantity: Quantity,
    },
    /// Holds units for an order or a booking.
    Reserve {
        /// The order or booking holding the units.
        reservation_id: ReservationId,
        /// Units held.
        quantity: Quantity,
        /// The booking these seats are for, when the reservation decides it.
        booking: Option<SeatHold>,
    },
    /// Gives held units back to sale.
    Release {
        /// The reservation to release.
        reservation_id: ReservationId,
    },
    /// Turns held units into a sale: they leave the physical stock.
    Commit {
        /// The reservation to commit.
        reservation_id: ReservationId,
    },
    /// Puts the units of a refunded sale back to sale.
    Return {
        /// The committed reservation whose units come back.
        reservation_id: ReservationId,
    },
    /// Puts some units of a sale back to sale: goods a customer returned after delivery.
    /// Recorded as a returned reservation of its own, so a repeat is a no-op and the
    /// units are counted once.
    ReturnUnits {
        /// The id of this return (derived from the after-sales request and the SKU).
        return_id: ReservationId,
        /// Units that came back.
        quantity: Quantity,
    },
    /// Sets the safety threshold: falling below this many available units is reported;
    /// 0 sets none.
    SetSafetyThreshold {
        /// The item.
        sku: Sku,
        /// Units; 0 for no threshold.
        threshold: u32,
    },
}

/// Events of an [`InventoryItem`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InventoryEvent {
    /// Physical stock was added.
    Restocked {
        /// The item restocked.
        sku: Sku,
        /// Units added.
        quantity: u32,
        /// Physical stock after the restock.
        on_hand: u64,
    },
    /// Units were held for a reservation.
    StockReserved {
        /// The order or booking holding the units.
        reservation_id: ReservationId,
        /// Units held.
        quantity: u32,
        /// The booking these seats are for, when the reservation decided it (version 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        booking: Option<SeatHold>,
    },
    /// Held units went back to sale.
    StockReleased {
        /// The released reservation.
        reservation_id: ReservationId,
        /// Units released.
        quantity: u32,
    },
    /// Held units were sold and left the physical stock.
    StockCommitted {
        /// The committed reservation.
        reservation_id: ReservationId,
        /// Units sold.
        quantity: u32,
    },
    /// Units of a refunded sale came back to the physical stock.
    StockReturned {
        /// The returned reservation.
        reservation_id: ReservationId,
        /// Units returned.
        quantity: u32,
    },
    /// The safety threshold was set (0: none).
    SafetyThresholdSet {
        /// The item.
        sku: Sku,
        /// Units.
        threshold: u32,
    },
    /// The units available fell below the safety threshold (recorded once per crossing).
    StockBelowThreshold {
        /// The item.
        sku: Sku,
        /// Units available now.
        available: u64,
        /// The threshold.
        threshold: u32,
    },
}

impl DomainEvent for InventoryEvent {
    fn event_type(&self) -> String {
        match self {
            InventoryEvent::Restocked { .. } => "Restocked",
            InventoryEvent::StockReserved { .. } => "StockReserved",
            InventoryEvent::StockReleased { .. } => "StockReleased",
            InventoryEvent::StockCommitted { .. } => "StockCommitted",
            InventoryEvent::StockReturned { .. } => "StockReturned",
            InventoryEvent::SafetyThresholdSet { .. } => "SafetyThresholdSet",
            InventoryEvent::StockBelowThreshold { .. } => "StockBelowThreshold",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            InventoryEvent::StockReserved { .. } => "2",
            InventoryEvent::Restocked { .. }
            | InventoryEvent::StockReleased { .. }
            | InventoryEvent::StockCommitted { .. }
            | InventoryEvent::StockReturned { .. }
            | InventoryEvent::SafetyThresholdSet { .. }
            | InventoryEvent::StockBelowThreshold { .. } => "1",
        }
        .to_string()
    }
}

/// Why an [`InventoryCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// Fewer units are available than requested.
    #[error("insufficient stock: {requested} requested, {available} available")]
    InsufficientStock {
        /// Units requested.
        requested: u32,
        /// Units available when the request was refused.
        available: u64,
    },
    /// The reservation exists with another quantity.
    #[error("reservation {reservation_id} holds {held} units, not {requested}")]
    ReservationMismatch {
        /// The reservation.
        reservation_id: ReservationId,
        /// Units it holds.
        held: u32,
        /// Units the command asked for.
        requested: u32,
    },
    /// The reservation was released or returned and cannot be used again.
    #[error("reservation {reservation_id} is closed")]
    ReservationClosed {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// The reservation was committed: its units are sold and cannot be released.
    #[error("reservation {reservation_id} is already committed")]
    AlreadyCommitted {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// The reservation was never committed, so nothing can be returned.
    #[error("reservation {reservation_id} is not committed")]
    NotCommitted {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// No reservation with this id exists on this item.
    #[error("unknown reservation {reservation_id}")]
    UnknownReservation {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// The restock names another item than the one this stock belongs to.
    #[error("this stock belongs to {expected}, not {got}")]
    SkuMismatch {
        /// The item of this stock.
        expected: Sku,
        /// The item named by the command.
        got: Sku,
    },
    /// The restock would make the stock count overflow.
    #[error("stock count overflow")]
    StockOverflow,
}

impl InventoryError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            InventoryError::InsufficientStock { .. } => "insufficient_stock",
            InventoryError::ReservationMismatch { .. } => "reservation_mismatch",
            InventoryError::ReservationClosed { .. } => "reservation_closed",
            InventoryError::AlreadyCommitted { .. } => "reservation_committed",
            InventoryError::NotCommitted { .. } => "reservation_not_committed",
            InventoryError::UnknownReservation { .. } => "unknown_reservation",
            InventoryError::SkuMismatch { .. } => "sku_mismatch",
            InventoryError::StockOverflow => "stock_overflow",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            InventoryError::SkuMismatch { .. } | InventoryError::StockOverflow => {
                ErrorKind::Invalid
            }
            _ => ErrorKind::Refused,
        }
    }
}

impl DomainError for InventoryError {
    fn code(&self) -> &'static str {
        InventoryError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        InventoryError::kind(self)
    }
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Units are held.
    Reserved,
    /// Units were sold.
    Committed,
    /// Units went back to sale before being sold.
    Released,
    /// Units were sold, then returned after a refund.
    Returned,
}

/// Units held by one order or booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Units held.
    pub quantity: u32,
    /// Where the reservation stands.
    pub status: ReservationStatus,
}

/// Stock of one item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    sku: Option<Sku>,
    on_hand: u64,
    reserved: u64,
    /// Every reservation ever taken, serialized in the compact form.
    #[serde(with = "compact_reservations")]
    reservations: BTreeMap<ReservationId, Reservation>,
    #[serde(default)]
    safety_threshold: u32,
    /// Below the threshold since the last `StockBelowThreshold`.
    #[serde(default)]
    below_threshold: bool,
}

impl InventoryItem {
    /// The safety threshold (0: none).
    pub fn safety_threshold(&self) -> u32 {
        self.safety_threshold
    }

    /// Whether the units available are below the threshold and that was recorded.
    pub fn below_threshold(&self) -> bool {
        self.below_threshold
    }

    /// The crossing to record after a step: below the threshold, not recorded yet.
    fn crossing(&self) -> Option<InventoryEvent> {
        let sku = self.sku.clone()?;
        let below =
            self.safety_threshold > 0 && self.available() < u64::from(self.safety_threshold);
        (below && !self.below_threshold).then(|| InventoryEvent::StockBelowThreshold {
            sku,
            available: self.available(),
            threshold: self.safety_threshold,
        })
    }

    /// The item, once it has been restocked at least once.
    pub fn sku(&self) -> Option<&Sku> {
        self.sku.as_ref()
    }

    /// Physical stock, including units held by reservations.
    pub fn on_hand(&self) -> u64 {
        self.on_hand
    }

    /// Units held by open reservations.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Units that can still be reserved; never below zero.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }

    /// A reservation by id.
    pub fn reservation(&self, id: &ReservationId) -> Option<&Reservation> {
        self.reservations.get(id)
    }

    /// Every reservation ever made on this item.
    pub fn reservations(&self) -> &BTreeMap<ReservationId, Reservation> {
        &self.reservations
    }

    fn existing(&self, reservation_id: ReservationId) -> Result<&Reservation, InventoryError> {
        self.reservations
            .get(&reservation_id)
            .ok_or(InventoryError::UnknownReservation { reservation_id })
    }
}

impl Aggregate for InventoryItem {
    const TYPE: &'static str = "inventory";
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = InventoryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use ReservationStatus as S;
        let event = match command {
            InventoryCommand::Restock { sku, quantity } => {
                if let Some(expected) = &self.sku {
                    if *expected != sku {
                        return Err(InventoryError::SkuMismatch {
                            expected: expected.clone(),
                            got: sku,
                        });
                    }
                }
                let on_hand = self
                    .on_hand
                    .checked_add(u64::from(quantity.get()))
                    .ok_or(InventoryError::StockOverflow)?;
                InventoryEvent::Restocked {
                    sku,
                    quantity: quantity.get(),
                    on_hand,
                }
            }
            InventoryCommand::Check { quantity } => {
                let available = self.available();
                if available < u64::from(quantity.get()) {
                    return Err(InventoryError::InsufficientStock {
                        requested: quantity.get(),
                        available,
                    });
                }
                return Ok(());
            }
            InventoryCommand::Open { sku, quantity } => match &self.sku {
                Some(expected) if *expected == sku => return Ok(()),
                Some(expected) => {
                    return Err(InventoryError::SkuMismatch {
                        expected: expected.clone(),
                        got: sku,
                    })
                }
                None => InventoryEvent::Restocked {
                    sku,
                    quantity: quantity.get(),
                    on_hand: u64::from(quantity.get()),
                },
            },
            InventoryCommand::Reserve {
                reservation_id,
                quantity,
                booking,
            } => {
                let requested = quantity.get();
                if let Some(existing) = self.reservations.get(&reservation_id) {
                    return match existing.status {
                        S::Reserved | S::Committed if existing.quantity == requested => Ok(()),
                        S::Reserved | S::Committed => Err(InventoryError::ReservationMismatch {
                            reservation_id,
                            held: existing.quantity,
                            requested,
                        }),
                        S::Released | S::Returned => {
                            Err(InventoryError::ReservationClosed { reservation_id })
                        }
                    };
                }
                let available = self.available();
                if available < u64::from(requested) {
                    return Err(InventoryError::InsufficientStock {
                        requested,
                        available,
                    });
                }
                InventoryEvent::StockReserved {
                    reservation_id,
                    quantity: requested,
                    booking,
                }
            }
            InventoryCommand::Release { reservation_id } => {
                let existing = self.existing(reservation_id)?;
                match existing.status {
                    S::Reserved => InventoryEvent::StockReleased {
                        reservation_id,
                        quantity: existing.quantity,
                    },
                    S::Released => return Ok(()),
                    S::Committed => {
                        return Err(InventoryError::AlreadyCommitted { reservation_id })
                    }
                    S::Returned => {
                        return Err(InventoryError::ReservationClosed { reservation_id })
                    }
                }
            }
            InventoryCommand::Commit { reservation_id } => {
                let existing = self.existing(reservation_id)?;
                match existing.status {
                    S::Reserved => InventoryEvent::StockCommitted {
                        reservation_id,
                        quantity: existing.quantity,
                    },
                    S::Committed => return Ok(()),
                    S::Released | S::Returned => {
                        return Err(InventoryError::ReservationClosed { reservation_id })
                    }
                }
            }
            InventoryCommand::Return { reservation_id } => {
                let existing = self.existing(reservation_id)?;
                match existing.status {
                    S::Committed => InventoryEvent::StockReturned {
                        reservation_id,
                        quantity: existing.quantity,
                    },
                    S::Returned => return Ok(()),
                    S::Reserved | S::Released => {
                        return Err(InventoryError::NotCommitted { reservation_id })
                    }
                }
            }
            InventoryCommand::ReturnUnits {
                return_id,
                quantity,
            } => {
                if let Some(existing) = self.reservations.get(&return_id) {
                    return if existing.status == S::Returned && existing.quantity == quantity.get()
                    {
                        Ok(())
                    } else {
                        Err(InventoryError::ReservationMismatch {
                            reservation_id: return_id,
                            held: existing.quantity,
                            requested: quantity.get(),
                        })
                    };
                }
                InventoryEvent::StockReturned {
                    reservation_id: return_id,
                    quantity: quantity.get(),
                }
            }
            InventoryCommand::SetSafetyThreshold { sku, threshold } => {
                if let Some(expected) = &self.sku {
                    if *expected != sku {
                        return Err(InventoryError::SkuMismatch {
                            expected: expected.clone(),
                            got: sku,
                        });
                    }
                }
                if self.sku.is_some() && self.safety_threshold == threshold {
                    return Ok(());
                }
                InventoryEvent::SafetyThresholdSet { sku, threshold }
            }
        };
        sink.write(event, self).await;
        if let Some(crossing) = self.crossing() {
            sink.write(crossing, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            InventoryEvent::Restocked { sku, on_hand, .. } => {
                self.sku = Some(sku);
                self.on_hand = on_hand;
            }
            InventoryEvent::StockReserved {
                reservation_id,
                quantity,
                ..
            } => {
                self.reserved = self.reserved.saturating_add(u64::from(quantity));
                self.reservations.insert(
                    reservation_id,
                    Reservation {
                        quantity,
                        status: ReservationStatus::Reserved,
                    },
                );
            }
            InventoryEvent::StockReleased {
                reservation_id,
                quantity,
            } => {
                self.reserved = self.reserved.saturating_sub(u64::from(quantity));
                self.set_status(reservation_id, ReservationStatus::Released);
            }
            InventoryEvent::StockCommitted {
                reservation_id,
                quantity,
            } => {
                self.reserved = self.reserved.saturating_sub(u64::from(quantity));
                self.on_hand = self.on_hand.saturating_sub(u64::from(quantity));
                self.set_status(reservation_id, ReservationStatus::Committed);
            }
            InventoryEvent::StockReturned {
                reservation_id,
                quantity,
            } => {
                self.on_hand = self.on_hand.saturating_add(u64::from(quantity));
                // Units returned by themselves ([`InventoryCommand::ReturnUnits`]) have no
                // reservation before: their return is recorded as one.
                self.reservations
                    .entry(reservation_id)
                    .or_insert(Reservation {
                        quantity,
                        status: ReservationStatus::Returned,
                    });
                self.set_status(reservation_id, ReservationStatus::Returned);
            }
            InventoryEvent::SafetyThresholdSet { sku, threshold } => {
                self.sku = Some(sku);
                self.safety_threshold = threshold;
            }
            InventoryEvent::StockBelowThreshold { .. } => self.below_threshold = true,
        }
        // Back at the threshold or above (or no threshold): the next fall is a new crossing.
        if self.safety_threshold == 0 || self.available() >= u64::from(self.safety_threshold) {
            self.below_threshold = false;
        }
    }
}

impl InventoryItem {
    fn set_status(&mut self, reservation_id: ReservationId, status: ReservationStatus) {
        if let Some(r) = self.reservations.get_mut(&reservation_id) {
            r.status = status;
        }
    }
}

pub mod compact_reservations {
    //! The serialized form of an item's reservations: one string, the version prefix
    //! [`PREFIX`] and then, in standard base64, one record of [`RECORD_LEN`] bytes per
    //! reservation in ascending id order: the id's 16 bytes, the quantity (4 bytes, little
    //! endian) and the status (1 byte: 0 reserved, 1 committed, 2 released, 3 returned).
    //! A hundred thousand reservations are 2.8 MB of text instead of 7.9 MB of JSON objects,
    //! and read back without parsing a key or a field name per reservation.
    //!
    //! Reading also accepts the earlier form, a map from reservation id to
    //! `{"quantity": .., "status": ".."}`, which snapshots written before hold. A string
    //! with another prefix, bad base64, a length that is not a whole number of records, an
    //! unknown status or ids out of order is an error, so such a snapshot is not used.

    use std::collections::BTreeMap;
    use std::fmt;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::de::{self, MapAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use uuid::Uuid;

    use super::{Reservation, ReservationStatus};
    use crate::common::ReservationId;

    /// Opens the string of the first compact form; a later form takes another prefix.
    pub const PREFIX: &str = "v1:";

    /// Bytes per reservation: id, quantity, status.
    pub const RECORD_LEN: usize = 16 + 4 + 1;

    fn status_byte(status: ReservationStatus) -> u8 {
        match status {
            ReservationStatus::Reserved => 0,
            ReservationStatus::Committed => 1,
            ReservationStatus::Released => 2,
            ReservationStatus::Returned => 3,
        }
    }

    fn status_of(byte: u8) -> Option<ReservationStatus> {
        match byte {
            0 => Some(ReservationStatus::Reserved),
            1 => Some(ReservationStatus::Committed),
            2 => Some(ReservationStatus::Released),
            3 => Some(ReservationStatus::Returned),
            _ => None,
        }
    }

    /// The compact string of `reservations`.
    pub fn encode(reservations: &BTreeMap<ReservationId, Reservation>) -> String {
        let mut records = Vec::with_capacity(reservations.len() * RECORD_LEN);
        for (id, reservation) in reservations {
            records.extend_from_slice(id.as_uuid().as_bytes());
            records.extend_from_slice(&reservation.quantity.to_le_bytes());
            records.push(status_byte(reservation.status));
        }
        let mut text = String::with_capacity(
            PREFIX.len() + base64::encoded_len(records.len(), true).unwrap_or(0),
        );
        text.push_str(PREFIX);
        STANDARD.encode_string(&records, &mut text);
        text
    }

    /// The reservations of a compact string, or why it does not read.
    pub fn decode(text: &str) -> Result<BTreeMap<ReservationId, Reservation>, String> {
        let encoded = text.strip_prefix(PREFIX).ok_or_else(|| {
            let start: String = text.chars().take(8).collect();
            format!("reservations in an unknown form (starts with {start:?}, not {PREFIX:?})")
        })?;
        let records = STANDARD
            .decode(encoded)
            .map_err(|err| format!("reservations are not valid base64: {err}"))?;
        if records.len() % RECORD_LEN != 0 {
            return Err(format!(
                "reservations are {} bytes, not a whole number of {RECORD_LEN}-byte records",
                records.len()
            ));
        }
        let mut decoded = Vec::with_capacity(records.len() / RECORD_LEN);
        let mut previous: Option<ReservationId> = None;
        for (index, record) in records.chunks_exact(RECORD_LEN).enumerate() {
            let (id, rest) = record.split_at(16);
            let (quantity, status) = rest.split_at(4);
            let id = ReservationId::from(Uuid::from_bytes(
                id.try_into().expect("a record starts with 16 id bytes"),
            ));
            if previous.is_some_and(|previous| previous >= id) {
                return Err(format!(
                    "reservation {index} ({id}) is not after the one before it"
                ));
            }
            previous = Some(id);
            let quantity =
                u32::from_le_bytes(quantity.try_into().expect("4 quantity bytes follow the id"));
            let status = status_of(status[0]).ok_or_else(|| {
                format!(
                    "reservation {index} ({id}) has the unknown status {}",
                    status[0]
                )
            })?;
            decoded.push((id, Reservation { quantity, status }));
        }
        // In ascending order: the map is built in one pass, without a search per entry.
        Ok(decoded.into_iter().collect())
    }

    /// Serializes the reservations as their compact string.
    pub fn serialize<S: Serializer>(
        reservations: &BTreeMap<ReservationId, Reservation>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode(reservations))
    }

    /// Reads the reservations from their compact string or from the earlier map form.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<ReservationId, Reservation>, D::Error> {
        deserializer.deserialize_any(EitherForm)
    }

    /// Accepts the compact string and the map by reservation id.
    struct EitherForm;

    impl<'de> Visitor<'de> for EitherForm {
        type Value = BTreeMap<ReservationId, Reservation>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "reservations as a {PREFIX:?}-prefixed compact string or a map by reservation id"
            )
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            decode(text).map_err(E::custom)
        }

        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut reservations = BTreeMap::new();
            while let Some((id, reservation)) = map.next_entry::<ReservationId, Reservation>()? {
                reservations.insert(id, reservation);
            }
            Ok(reservations)
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<InventoryEvent>) -> AggregateTestExecutor<InventoryItem> {
        TestFramework::<InventoryItem>::with(()).given(events)
    }

    fn threshold_set(threshold: u32) -> InventoryEvent {
        InventoryEvent::SafetyThresholdSet {
            sku: sku("MUG"),
            threshold,
        }
    }

    fn below(available: u64, threshold: u32) -> InventoryEvent {
        InventoryEvent::StockBelowThreshold {
            sku: sku("MUG"),
            available,
            threshold,
        }
    }

    fn set_threshold(threshold: u32) -> InventoryCommand {
        InventoryCommand::SetSafetyThreshold {
            sku: sku("MUG"),
            threshold,
        }
    }

    #[test]
    fn falling_below_the_safety_threshold_is_recorded_once() {
        // 10 on hand, threshold 5: reserving 6 leaves 4.
        given(vec![restocked(10), threshold_set(5)])
            .when(reserve(1, 6))
            .then_expect_events(vec![reserved(1, 6), below(4, 5)]);
        // Still below: a further fall records nothing more.
        given(vec![
            restocked(10),
            threshold_set(5),
            reserved(1, 6),
            below(4, 5),
        ])
        .when(reserve(2, 1))
        .then_expect_events(vec![reserved(2, 1)]);
    }

    #[test]
    fn a_new_crossing_after_recovering_is_recorded_again() {
        let history = vec![
            restocked(10),
            threshold_set(5),
            reserved(1, 6),
            below(4, 5),
            released(1, 6),
        ];
        given(history.clone())
            .when(reserve(2, 7))
            .then_expect_events(vec![reserved(2, 7), below(3, 5)]);
        // Restocked back to the threshold: recovered.
        let mut item = InventoryItem::default();
        for e in history {
            item.apply(e);
        }
        assert!(!item.below_threshold());
    }

    #[test]
    fn setting_a_threshold_above_what_is_available_is_a_crossing() {
        given(vec![restocked(3)])
            .when(set_threshold(5))
            .then_expect_events(vec![threshold_set(5), below(3, 5)]);
        given(vec![restocked(3), threshold_set(5), below(3, 5)])
            .when(set_threshold(5))
            .then_expect_events(vec![]);
        // No threshold: never below.
        given(vec![restocked(3), threshold_set(5), below(3, 5)])
            .when(set_threshold(0))
            .then_expect_events(vec![threshold_set(0)]);
        given(vec![restocked(3)])
            .when(InventoryCommand::SetSafetyThreshold {
                sku: sku("CUP"),
                threshold: 1,
            })
            .then_expect_error(InventoryError::SkuMismatch {
                expected: sku("MUG"),
                got: sku("CUP"),
            });
    }

    fn r(n: u128) -> ReservationId {
        id(n)
    }

    fn restocked(on_hand: u64) -> InventoryEvent {
        InventoryEvent::Restocked {
            sku: sku("MUG"),
            quantity: on_hand as u32,
            on_hand,
        }
    }

    fn reserved(n: u128, quantity: u32) -> InventoryEvent {
        InventoryEvent::StockReserved {
            reservation_id: r(n),
            quantity,
            booking: None,
        }
    }

    fn committed(n: u128, quantity: u32) -> InventoryEvent {
        InventoryEvent::StockCommitted {
            reservation_id: r(n),
            quantity,
        }
    }

    fn released(n: u128, quantity: u32) -> InventoryEvent {
        InventoryEvent::StockReleased {
            reservation_id: r(n),
            quantity,
        }
    }

    fn returned(n: u128, quantity: u32) -> InventoryEvent {
        InventoryEvent::StockReturned {
            reservation_id: r(n),
            quantity,
        }
    }

    fn reserve(n: u128, q: i64) -> InventoryCommand {
        InventoryCommand::Reserve {
            reservation_id: r(n),
            quantity: qty(q),
            booking: None,
        }
    }

    fn seat_hold() -> SeatHold {
        use chrono::TimeZone;
        SeatHold {
            customer_id: id(2),
            show_id: id(3),
            session_id: id(4),
            area_id: AreaId::parse("A").unwrap(),
            unit_price: eur(5000),
            expires_at: Utc.with_ymd_and_hms(2030, 5, 1, 20, 15, 0).unwrap(),
        }
    }

    #[test]
    fn a_reservation_records_the_booking_it_decides_and_refuses_past_capacity() {
        let for_booking = |n| InventoryCommand::Reserve {
            reservation_id: r(n),
            quantity: qty(1),
            booking: Some(seat_hold()),
        };
        given(vec![restocked(1)])
            .when(for_booking(1))
            .then_expect_events(vec![InventoryEvent::StockReserved {
                reservation_id: r(1),
                quantity: 1,
                booking: Some(seat_hold()),
            }]);
        let taken = InventoryEvent::StockReserved {
            reservation_id: r(1),
            quantity: 1,
            booking: Some(seat_hold()),
        };
        // The same booking again changes nothing; another finds no seat left.
        given(vec![restocked(1), taken.clone()])
            .when(for_booking(1))
            .then_expect_events(vec![]);
        given(vec![restocked(1), taken])
            .when(for_booking(2))
            .then_expect_error(InventoryError::InsufficientStock {
                requested: 1,
                available: 0,
            });
        let json = serde_json::to_value(reserved(1, 1)).unwrap();
        assert!(json["StockReserved"].get("booking").is_none(), "{json}");
    }

    fn state(events: Vec<InventoryEvent>) -> InventoryItem {
        let mut item = InventoryItem::default();
        for e in events {
            item.apply(e);
        }
        item
    }

    #[test]
    fn restock_adds_to_on_hand() {
        given(vec![restocked(5)])
            .when(InventoryCommand::Restock {
                sku: sku("mug"),
                quantity: qty(3),
            })
            .then_expect_events(vec![InventoryEvent::Restocked {
                sku: sku("MUG"),
                quantity: 3,
                on_hand: 8,
            }]);
    }

    #[test]
    fn restock_of_a_new_item_starts_from_zero() {
        given(vec![])
            .when(InventoryCommand::Restock {
                sku: sku("MUG"),
                quantity: qty(4),
            })
            .then_expect_events(vec![restocked(4)]);
    }

    #[test]
    fn check_answers_without_changing_anything() {
        let check = |n| InventoryCommand::Check { quantity: qty(n) };
        given(vec![InventoryEvent::Restocked {
            sku: sku("SEATS"),
            quantity: 2,
            on_hand: 2,
        }])
        .when(check(2))
        .then_expect_events(vec![]);
        given(vec![InventoryEvent::Restocked {
            sku: sku("SEATS"),
            quantity: 2,
            on_hand: 2,
        }])
        .when(check(3))
        .then_expect_error(InventoryError::InsufficientStock {
            requested: 3,
            available: 2,
        });
    }

    #[test]
    fn open_stocks_a_new_item_once() {
        let open = InventoryCommand::Open {
            sku: sku("SEATS"),
            quantity: qty(100),
        };

        given(vec![])
            .when(open.clone())
            .then_expect_events(vec![InventoryEvent::Restocked {
                sku: sku("SEATS"),
                quantity: 100,
                on_hand: 100,
            }]);
        given(vec![InventoryEvent::Restocked {
            sku: sku("SEATS"),
            quantity: 100,
            on_hand: 100,
        }])
        .when(open)
        .then_expect_events(vec![]);
    }

    #[test]
    fn restock_refuses_another_sku() {
        given(vec![restocked(5)])
            .when(InventoryCommand::Restock {
                sku: sku("PLATE"),
                quantity: qty(1),
            })
            .then_expect_error(InventoryError::SkuMismatch {
                expected: sku("MUG"),
                got: sku("PLATE"),
            });
    }

    #[test]
    fn reserve_holds_available_units() {
        given(vec![restocked(5)])
            .when(reserve(1, 5))
            .then_expect_events(vec![reserved(1, 5)]);
    }

    #[test]
    fn reserve_refuses_more_than_available() {
        let err = given(vec![restocked(5), reserved(1, 3)])
            .when(reserve(2, 3))
            .inspect_result()
            .unwrap_err();
        assert_eq!(
            err,
            InventoryError::InsufficientStock {
                requested: 3,
                available: 2
            }
        );
        assert_eq!(err.code(), "insufficient_stock");
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn reserve_refuses_on_an_item_never_restocked() {
        given(vec![])
            .when(reserve(1, 1))
            .then_expect_error(InventoryError::InsufficientStock {
                requested: 1,
                available: 0,
            });
    }

    #[test]
    fn available_never_goes_below_zero() {
        let item = state(vec![restocked(5), reserved(1, 5)]);
        assert_eq!(item.available(), 0);
        given(vec![restocked(5), reserved(1, 5)])
            .when(reserve(2, 1))
            .then_expect_error(InventoryError::InsufficientStock {
                requested: 1,
                available: 0,
            });
        let item = state(vec![restocked(5), reserved(1, 5), committed(1, 5)]);
        assert_eq!(
            (item.on_hand(), item.reserved(), item.available()),
            (0, 0, 0)
        );
    }

    #[test]
    fn reserve_repeated_with_same_quantity_is_a_no_op() {
        given(vec![restocked(5), reserved(1, 2)])
            .when(reserve(1, 2))
            .then_expect_events(vec![]);
        given(vec![restocked(5), reserved(1, 2), committed(1, 2)])
            .when(reserve(1, 2))
            .then_expect_events(vec![]);
    }

    #[test]
    fn reserve_repeated_even_when_stock_ran_out_is_a_no_op() {
        given(vec![restocked(2), reserved(1, 2)])
            .when(reserve(1, 2))
            .then_expect_events(vec![]);
    }

    #[test]
    fn reserve_repeated_with_another_quantity_is_refused() {
        given(vec![restocked(5), reserved(1, 2)])
            .when(reserve(1, 3))
            .then_expect_error(InventoryError::ReservationMismatch {
                reservation_id: r(1),
                held: 2,
                requested: 3,
            });
    }

    #[test]
    fn reserve_after_release_or_return_is_refused() {
        given(vec![restocked(5), reserved(1, 2), released(1, 2)])
            .when(reserve(1, 2))
            .then_expect_error(InventoryError::ReservationClosed {
                reservation_id: r(1),
            });
        given(vec![
            restocked(5),
            reserved(1, 2),
            committed(1, 2),
            returned(1, 2),
        ])
        .when(reserve(1, 2))
        .then_expect_error(InventoryError::ReservationClosed {
            reservation_id: r(1),
        });
    }

    #[test]
    fn release_gives_units_back() {
        given(vec![restocked(5), reserved(1, 2)])
            .when(InventoryCommand::Release {
                reservation_id: r(1),
            })
            .then_expect_events(vec![released(1, 2)]);
        let item = state(vec![restocked(5), reserved(1, 2), released(1, 2)]);
        assert_eq!(
            (item.on_hand(), item.reserved(), item.available()),
            (5, 0, 5)
        );
        assert_eq!(
            item.reservation(&r(1)).unwrap().status,
            ReservationStatus::Released
        );
    }

    #[test]
    fn release_repeated_is_a_no_op() {
        given(vec![restocked(5), reserved(1, 2), released(1, 2)])
            .when(InventoryCommand::Release {
                reservation_id: r(1),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn release_of_committed_stock_is_refused() {
        given(vec![restocked(5), reserved(1, 2), committed(1, 2)])
            .when(InventoryCommand::Release {
                reservation_id: r(1),
            })
            .then_expect_error(InventoryError::AlreadyCommitted {
                reservation_id: r(1),
            });
    }

    #[test]
    fn release_of_returned_stock_is_refused() {
        given(vec![
            restocked(5),
            reserved(1, 2),
            committed(1, 2),
            returned(1, 2),
        ])
        .when(InventoryCommand::Release {
            reservation_id: r(1),
        })
        .then_expect_error(InventoryError::ReservationClosed {
            reservation_id: r(1),
        });
    }

    #[test]
    fn release_of_unknown_reservation_is_refused() {
        given(vec![restocked(5)])
            .when(InventoryCommand::Release {
                reservation_id: r(9),
            })
            .then_expect_error(InventoryError::UnknownReservation {
                reservation_id: r(9),
            });
    }

    #[test]
    fn commit_takes_units_out_of_stock() {
        given(vec![restocked(5), reserved(1, 2)])
            .when(InventoryCommand::Commit {
                reservation_id: r(1),
            })
            .then_expect_events(vec![committed(1, 2)]);
        let item = state(vec![
            restocked(5),
            reserved(1, 2),
            reserved(2, 1),
            committed(1, 2),
        ]);
        assert_eq!(
            (item.on_hand(), item.reserved(), item.available()),
            (3, 1, 2)
        );
    }

    #[test]
    fn commit_repeated_is_a_no_op() {
        given(vec![restocked(5), reserved(1, 2), committed(1, 2)])
            .when(InventoryCommand::Commit {
                reservation_id: r(1),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn commit_of_released_or_returned_stock_is_refused() {
        given(vec![restocked(5), reserved(1, 2), released(1, 2)])
            .when(InventoryCommand::Commit {
                reservation_id: r(1),
            })
            .then_expect_error(InventoryError::ReservationClosed {
                reservation_id: r(1),
            });
        given(vec![
            restocked(5),
            reserved(1, 2),
            committed(1, 2),
            returned(1, 2),
        ])
        .when(InventoryCommand::Commit {
            reservation_id: r(1),
        })
        .then_expect_error(InventoryError::ReservationClosed {
            reservation_id: r(1),
        });
    }

    #[test]
    fn commit_of_unknown_reservation_is_refused() {
        given(vec![restocked(5)])
            .when(InventoryCommand::Commit {
                reservation_id: r(9),
            })
            .then_expect_error(InventoryError::UnknownReservation {
                reservation_id: r(9),
            });
    }

    #[test]
    fn return_puts_sold_units_back_to_sale() {
        given(vec![restocked(5), reserved(1, 2), committed(1, 2)])
            .when(InventoryCommand::Return {
                reservation_id: r(1),
            })
            .then_expect_events(vec![returned(1, 2)]);
        let item = state(vec![
            restocked(5),
            reserved(1, 2),
            committed(1, 2),
            returned(1, 2),
        ]);
        assert_eq!(
            (item.on_hand(), item.reserved(), item.available()),
            (5, 0, 5)
        );
    }

    #[test]
    fn returned_units_come_back_once() {
        let units = InventoryCommand::ReturnUnits {
            return_id: r(7),
            quantity: qty(1),
        };
        given(vec![restocked(5), reserved(1, 2), committed(1, 2)])
            .when(units.clone())
            .then_expect_events(vec![returned(7, 1)]);
        let back = vec![
            restocked(5),
            reserved(1, 2),
            committed(1, 2),
            returned(7, 1),
        ];
        assert_eq!(state(back.clone()).on_hand(), 4);
        given(back.clone()).when(units).then_expect_events(vec![]);
        given(back)
            .when(InventoryCommand::ReturnUnits {
                return_id: r(7),
                quantity: qty(2),
            })
            .then_expect_error(InventoryError::ReservationMismatch {
                reservation_id: r(7),
                held: 1,
                requested: 2,
            });
    }

    #[test]
    fn return_repeated_is_a_no_op() {
        given(vec![
            restocked(5),
            reserved(1, 2),
            committed(1, 2),
            returned(1, 2),
        ])
        .when(InventoryCommand::Return {
            reservation_id: r(1),
        })
        .then_expect_events(vec![]);
    }

    #[test]
    fn return_of_uncommitted_stock_is_refused() {
        given(vec![restocked(5), reserved(1, 2)])
            .when(InventoryCommand::Return {
                reservation_id: r(1),
            })
            .then_expect_error(InventoryError::NotCommitted {
                reservation_id: r(1),
            });
        given(vec![restocked(5), reserved(1, 2), released(1, 2)])
            .when(InventoryCommand::Return {
                reservation_id: r(1),
            })
            .then_expect_error(InventoryError::NotCommitted {
                reservation_id: r(1),
            });
    }

    #[test]
    fn return_of_unknown_reservation_is_refused() {
        given(vec![restocked(5)])
            .when(InventoryCommand::Return {
                reservation_id: r(9),
            })
            .then_expect_error(InventoryError::UnknownReservation {
                reservation_id: r(9),
            });
    }

    #[tokio::test]
    async fn handle_runs_inside_an_async_runtime() {
        given(vec![restocked(1)])
            .when_async(reserve(1, 1))
            .await
            .then_expect_events(vec![reserved(1, 1)]);
    }

    #[test]
    fn events_are_named_after_their_variant_and_versioned() {
        let e = reserved(1, 2);
        assert_eq!(e.event_type(), "StockReserved");
        assert_eq!(e.event_version(), "2");
        assert_eq!(released(1, 2).event_version(), "1");
        let json = serde_json::to_value(&e).unwrap();
        assert!(json.get("StockReserved").is_some());
    }

    /// An item with reservations in every status, a return of units of its own and a
    /// threshold crossed: every field of the state set.
    fn settled_item() -> InventoryItem {
        let mut history = vec![restocked(1_000), threshold_set(995)];
        for n in 1..=40u128 {
            history.push(reserved(n * 7_919 % 1_000, (n % 5 + 1) as u32));
        }
        history.extend([
            committed(7_919 % 1_000, 2),
            released(2 * 7_919 % 1_000, 3),
            committed(3 * 7_919 % 1_000, 4),
            returned(3 * 7_919 % 1_000, 4),
            returned(u128::MAX, 1),
            below(900, 995),
        ]);
        state(history)
    }

    #[test]
    fn the_serialized_state_packs_reservations_into_one_string_and_reads_back_the_same() {
        let item = settled_item();
        use ReservationStatus as S;
        for status in [S::Reserved, S::Committed, S::Released, S::Returned] {
            let held = item
                .reservations()
                .values()
                .any(|held| held.status == status);
            assert!(held, "a reservation {status:?} is in the state");
        }
        assert!(item.below_threshold());

        let json = serde_json::to_string(&item).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let packed = value["reservations"].as_str().expect("one string");
        assert!(packed.starts_with(compact_reservations::PREFIX), "{packed}");
        let records = item.reservations().len() * compact_reservations::RECORD_LEN;
        assert_eq!(
            packed.len(),
            compact_reservations::PREFIX.len() + records.div_ceil(3) * 4
        );

        let read: InventoryItem = serde_json::from_str(&json).unwrap();
        assert_eq!(read, item);
        // From a parsed JSON value too (an owned string rather than borrowed text).
        assert_eq!(
            serde_json::from_value::<InventoryItem>(value).unwrap(),
            item
        );
        // And after reading, commands decide as on the replayed state.
        assert_eq!(
            read.reservation(&r(3 * 7_919 % 1_000)).unwrap().status,
            ReservationStatus::Returned
        );

        let empty = InventoryItem::default();
        let json = serde_json::to_string(&empty).unwrap();
        assert!(json.contains(r#""reservations":"v1:""#), "{json}");
        assert_eq!(serde_json::from_str::<InventoryItem>(&json).unwrap(), empty);
    }

    #[test]
    fn a_state_written_with_reservations_as_a_map_still_reads() {
        // As snapshots were written before the compact form.
        let earlier = r#"{"sku":"MUG","on_hand":4,"reserved":1,"reservations":{
            "00000000-0000-0000-0000-000000000001":{"quantity":2,"status":"committed"},
            "00000000-0000-0000-0000-000000000002":{"quantity":1,"status":"reserved"},
            "00000000-0000-0000-0000-000000000003":{"quantity":4,"status":"released"},
            "00000000-0000-0000-0000-000000000004":{"quantity":1,"status":"returned"}
        },"safety_threshold":0,"below_threshold":false}"#;
        let replayed = state(vec![
            restocked(5),
            reserved(1, 2),
            reserved(2, 1),
            reserved(3, 4),
            committed(1, 2),
            released(3, 4),
            returned(4, 1),
        ]);
        assert_eq!((replayed.on_hand(), replayed.reserved()), (4, 1));
        let read: InventoryItem = serde_json::from_str(earlier).unwrap();
        assert_eq!(read, replayed);

        // The map form of any state reads as that state.
        let item = settled_item();
        let mut value = serde_json::to_value(&item).unwrap();
        value["reservations"] = serde_json::to_value(item.reservations()).unwrap();
        assert!(value["reservations"].is_object());
        assert_eq!(
            serde_json::from_value::<InventoryItem>(value).unwrap(),
            item
        );
    }

    #[test]
    fn a_corrupted_compact_string_is_refused() {
        let item = state(vec![restocked(5), reserved(1, 2), reserved(2, 1)]);
        let packed = compact_reservations::encode(item.reservations());
        let records = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(&packed[compact_reservations::PREFIX.len()..])
                .unwrap()
        };
        assert_eq!(records.len(), 2 * compact_reservations::RECORD_LEN);
        let repacked = |bytes: &[u8]| {
            use base64::Engine;
            format!(
                "{}{}",
                compact_reservations::PREFIX,
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )
        };
        let mut unknown_status = records.clone();
        unknown_status[compact_reservations::RECORD_LEN - 1] = 4;
        let mut out_of_order = records[compact_reservations::RECORD_LEN..].to_vec();
        out_of_order.extend_from_slice(&records[..compact_reservations::RECORD_LEN]);
        let repeated = [&records[..21], &records[..21]].concat();
        let cases = [
            (
                "not base64",
                format!("{}@@not base64@@", compact_reservations::PREFIX),
            ),
            ("short", repacked(&records[..records.len() - 1])),
            ("unknown status", repacked(&unknown_status)),
            ("out of order", repacked(&out_of_order)),
            ("repeated id", repacked(&repeated)),
            ("unknown version", packed.replacen("v1:", "v9:", 1)),
            (
                "no prefix",
                packed[compact_reservations::PREFIX.len()..].to_string(),
            ),
        ];
        let mut value = serde_json::to_value(&item).unwrap();
        for (what, corrupted) in cases {
            assert!(compact_reservations::decode(&corrupted).is_err(), "{what}");
            value["reservations"] = serde_json::Value::String(corrupted);
            let err = serde_json::from_str::<InventoryItem>(&value.to_string()).unwrap_err();
            assert!(err.to_string().contains("reservation"), "{what}: {err}");
        }
        // The intact string reads back.
        assert_eq!(
            &compact_reservations::decode(&packed).unwrap(),
            item.reservations()
        );
    }
}
