-- The tables of eventfx's transactional outbox on SQLite (3.42 or newer),
-- the embedded store of package outbox/sqlite. eventfx runs this file at
-- start (it is idempotent) unless outbox.skip_schema is set. Times are
-- microseconds since the Unix epoch (UTC).

-- Events written in a business transaction and not yet acknowledged by the
-- broker. The relay deletes a row in the transaction that published it.
CREATE TABLE IF NOT EXISTS eventfx_outbox (
    -- insertion order, never reused: a slot is published in seq order
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    -- the message ID (_watermill_message_uuid on the wire)
    id         TEXT    NOT NULL UNIQUE,
    topic      TEXT    NOT NULL,
    -- the Kafka record key; NULL when the event has none
    key        TEXT,
    -- 0..63: hash of the key (of the ID when there is none)
    slot       INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 63),
    payload    BLOB    NOT NULL,
    -- every other header, as a JSON object of strings
    headers    BLOB    NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER))
);
CREATE INDEX IF NOT EXISTS eventfx_outbox_slot_seq ON eventfx_outbox (slot, seq);

-- Rows the broker refused for a permanent reason (too large, topic refused),
-- with that reason; `eventfx outbox retry` moves them back.
CREATE TABLE IF NOT EXISTS eventfx_outbox_aside (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL,
    topic        TEXT    NOT NULL,
    key          TEXT,
    slot         INTEGER NOT NULL,
    payload      BLOB    NOT NULL,
    headers      BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    set_aside_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER))
);

-- The inbox of transactional handlers: one row per message a handler
-- handled, written in the transaction of its effects.
CREATE TABLE IF NOT EXISTS eventfx_inbox (
    handler    TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    handled_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    PRIMARY KEY (handler, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS eventfx_inbox_handled_at ON eventfx_inbox (handled_at);
