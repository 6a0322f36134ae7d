-- Ticketing read models: the catalog of shows with their sessions and seat areas, and
-- bookings with their tickets. Seat availability comes from inventory_levels, keyed by the
-- seat area's inventory id.

CREATE TABLE shows
(
    show_id          uuid PRIMARY KEY,
    title            text        NOT NULL,
    category         text        NOT NULL,
    city             text        NOT NULL,
    venue            text        NOT NULL,
    description      text        NOT NULL,
    first_session_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL
);
CREATE INDEX shows_city_category_idx ON shows (lower(city), lower(category));
CREATE INDEX shows_listing_idx ON shows (created_at DESC, show_id DESC);

CREATE TABLE show_sessions
(
    session_id uuid PRIMARY KEY,
    show_id    uuid        NOT NULL REFERENCES shows (show_id) ON DELETE CASCADE,
    starts_at  timestamptz NOT NULL
);
CREATE INDEX show_sessions_show_idx ON show_sessions (show_id, starts_at);

CREATE TABLE seat_areas
(
    session_id   uuid   NOT NULL REFERENCES show_sessions (session_id) ON DELETE CASCADE,
    area_id      text   NOT NULL,
    show_id      uuid   NOT NULL,
    position     int    NOT NULL,
    name         text   NOT NULL,
    price_minor  bigint NOT NULL,
    currency     text   NOT NULL,
    capacity     int    NOT NULL,
    inventory_id text   NOT NULL,
    PRIMARY KEY (session_id, area_id)
);

CREATE TABLE bookings
(
    booking_id   uuid PRIMARY KEY,
    customer_id  uuid        NOT NULL,
    show_id      uuid        NOT NULL,
    session_id   uuid        NOT NULL,
    area_id      text        NOT NULL,
    quantity     int         NOT NULL,
    total_minor  bigint      NOT NULL,
    currency     text        NOT NULL,
    status       text        NOT NULL,
    reason       text,
    expires_at   timestamptz,
    payment_id   uuid,
    requested_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint      NOT NULL
);
CREATE INDEX bookings_customer_idx ON bookings (customer_id, requested_at DESC, booking_id DESC);
CREATE INDEX bookings_area_status_idx ON bookings (session_id, area_id, status);

CREATE TABLE tickets
(
    ticket_id     uuid PRIMARY KEY,
    booking_id    uuid        NOT NULL REFERENCES bookings (booking_id) ON DELETE CASCADE,
    position      int         NOT NULL,
    session_id    uuid        NOT NULL,
    customer_id   uuid        NOT NULL,
    checked_in_at timestamptz
);
CREATE INDEX tickets_booking_idx ON tickets (booking_id, position);
