-- Endpoint settings, secret rotation, automatic disabling; per-directory
-- ordering and retry rounds of deliveries; the trace context of events.
ALTER TABLE endpoints
    ADD COLUMN description                text        NOT NULL DEFAULT '',
    -- retry_schedule is a JSON array of delays in microseconds; [] = default.
    ADD COLUMN retry_schedule             text        NOT NULL DEFAULT '[]',
    ADD COLUMN ordering                   text        NOT NULL DEFAULT 'resource',
    ADD COLUMN disabled_reason            text        NOT NULL DEFAULT '',
    ADD COLUMN disabled_seq               bigint      NOT NULL DEFAULT 0,
    ADD COLUMN previous_secret            text        NOT NULL DEFAULT '',
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN failing_since              timestamptz;

ALTER TABLE events ADD COLUMN traceparent text NOT NULL DEFAULT '';
CREATE INDEX events_by_seq ON events (seq);
CREATE INDEX events_by_time ON events (created_at);

ALTER TABLE deliveries
    ADD COLUMN directory_id text NOT NULL DEFAULT '',
    ADD COLUMN round_start  int  NOT NULL DEFAULT 0;
CREATE INDEX deliveries_directory_order ON deliveries (endpoint_id, directory_id, seq) WHERE state = 'pending';
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, created_at) WHERE state = 'failed';
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at, seq) WHERE state = 'pending';
