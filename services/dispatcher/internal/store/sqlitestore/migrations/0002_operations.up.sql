-- Endpoint settings, secret rotation, automatic disabling; per-directory
-- ordering and retry rounds of deliveries; the trace context of events.
ALTER TABLE endpoints ADD COLUMN description TEXT NOT NULL DEFAULT '';
-- retry_schedule is a JSON array of delays in microseconds; [] = default.
ALTER TABLE endpoints ADD COLUMN retry_schedule TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'resource';
ALTER TABLE endpoints ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN disabled_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;

ALTER TABLE events ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
CREATE INDEX events_by_seq ON events (seq);
CREATE INDEX events_by_time ON events (created_at);

ALTER TABLE deliveries ADD COLUMN directory_id TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN round_start INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_directory_order ON deliveries (endpoint_id, directory_id, seq) WHERE state = 'pending';
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, created_at) WHERE state = 'failed';
CREATE INDEX deliveries_leased ON deliveries (endpoint_id) WHERE state = 'pending' AND claimed_until IS NOT NULL;
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at, seq) WHERE state = 'pending';
