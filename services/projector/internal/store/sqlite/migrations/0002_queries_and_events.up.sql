-- Query support for issue 4: member counts kept with the rows (a group read
-- never counts 50,000 edges), case-folded columns for SCIM equality filters
-- and lookups, and the events the Events API serves. Existing rows are
-- case-folded with SQLite's lower (ASCII only); new ones are folded in Go.

ALTER TABLE groups ADD COLUMN member_count integer NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN name_lower text NOT NULL DEFAULT '';
UPDATE groups SET name_lower = lower(name),
    member_count = (SELECT count(*) FROM memberships m WHERE m.group_id = groups.id);
CREATE INDEX groups_directory_id_name_lower ON groups (directory_id, name_lower);

ALTER TABLE users ADD COLUMN email_lower text NOT NULL DEFAULT '';
UPDATE users SET email_lower = lower(email);
CREATE INDEX users_directory_id_email_lower ON users (directory_id, email_lower);

-- projector_events: one row per public (webhook) event, keyed by its stream sequence: the
-- Events API pages by sequence, so it can never skip an event. data is the
-- dsync.v1.Event as it was in the stream. occurred_at (RFC 3339, UTC) drives
-- retention.
CREATE TABLE projector_events (
    seq             integer PRIMARY KEY,
    id              text NOT NULL UNIQUE,
    directory_id    text NOT NULL,
    organization_id text NOT NULL,
    type            text NOT NULL,
    occurred_at     text,
    data            blob NOT NULL
);
CREATE INDEX projector_events_directory_id_seq ON projector_events (directory_id, seq);
CREATE INDEX projector_events_organization_id_seq ON projector_events (organization_id, seq);
CREATE INDEX projector_events_occurred_at ON projector_events (occurred_at);
