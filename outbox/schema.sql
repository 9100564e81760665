-- The tables of eventfx's transactional outbox, for PostgreSQL 12 or newer.
-- eventfx runs this file at start (it is idempotent) unless
-- outbox.skip_schema is set; teams that run their own migrations apply it
-- themselves.

-- Events written in a business transaction and not yet acknowledged by the
-- broker. The relay deletes a row in the transaction that published it.
CREATE TABLE IF NOT EXISTS eventfx_outbox (
    -- insertion order: a slot is published in seq order
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the message ID (_watermill_message_uuid on the wire)
    id         text        NOT NULL,
    topic      text        NOT NULL,
    -- the Kafka record key; NULL when the event has none
    key        text,
    -- 0..63: hash of the key (of the ID when there is none); one relay at a
    -- time publishes a slot, so the events of a key keep their order
    slot       smallint    NOT NULL CHECK (slot BETWEEN 0 AND 63),
    payload    bytea       NOT NULL,
    -- every other header, as a JSON object of strings
    headers    json        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT eventfx_outbox_id_key UNIQUE (id)
);
CREATE INDEX IF NOT EXISTS eventfx_outbox_slot_seq ON eventfx_outbox (slot, seq);

-- Rows the broker refused for a permanent reason (too large, topic refused),
-- with that reason; `eventfx outbox retry` moves them back.
CREATE TABLE IF NOT EXISTS eventfx_outbox_aside (
    seq          bigint      PRIMARY KEY,
    id           text        NOT NULL,
    topic        text        NOT NULL,
    key          text,
    slot         smallint    NOT NULL,
    payload      bytea       NOT NULL,
    headers      json        NOT NULL,
    created_at   timestamptz NOT NULL,
    reason       text        NOT NULL,
    set_aside_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The inbox of transactional handlers (outbox.Handler): one row per message
-- a handler handled, written in the transaction of its effects, so a
-- redelivered message is acknowledged without running again. Rows older
-- than outbox.inbox_retention are deleted in the background.
CREATE TABLE IF NOT EXISTS eventfx_inbox (
    handler    text        NOT NULL,
    message_id text        NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (handler, message_id)
);
CREATE INDEX IF NOT EXISTS eventfx_inbox_handled_at ON eventfx_inbox (handled_at);
