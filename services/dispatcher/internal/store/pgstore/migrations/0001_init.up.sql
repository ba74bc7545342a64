CREATE TABLE endpoints (
    id         text        PRIMARY KEY,
    url        text        NOT NULL,
    events     text[]      NOT NULL DEFAULT '{}',
    state      text        NOT NULL,
    secret     text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- events holds each public event's rendered body once; every attempt of
-- every delivery sends exactly these bytes.
CREATE TABLE events (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    subject    text        NOT NULL,
    seq        bigint      NOT NULL,
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE deliveries (
    id               text        PRIMARY KEY,
    endpoint_id      text        NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    event_id         text        NOT NULL REFERENCES events (id),
    event_name       text        NOT NULL,
    subject          text        NOT NULL,
    seq              bigint      NOT NULL,
    state            text        NOT NULL,
    attempts         int         NOT NULL DEFAULT 0,
    last_status_code int         NOT NULL DEFAULT 0,
    last_error       text        NOT NULL DEFAULT '',
    next_attempt_at  timestamptz NOT NULL,
    -- claimed_until is the lease of the worker sending it; NULL when none.
    claimed_until    timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_subject_order ON deliveries (endpoint_id, subject, seq) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (endpoint_id) WHERE state = 'pending' AND claimed_until IS NOT NULL;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);

CREATE TABLE attempts (
    delivery_id   text        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number        int         NOT NULL,
    started_at    timestamptz NOT NULL,
    status_code   int         NOT NULL,
    error         text        NOT NULL,
    latency_us    bigint      NOT NULL,
    response_body text        NOT NULL,
    PRIMARY KEY (delivery_id, number)
);
