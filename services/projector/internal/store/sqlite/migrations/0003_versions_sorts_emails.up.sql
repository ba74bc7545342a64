-- Issue 4, continued: row versions (SCIM meta.version), sort indexes, an
-- index of every email of a user, and the user and group each event is
-- about (the Events API's user_id and group_id filters). SQLite compares
-- text byte by byte, as the PostgreSQL store's COLLATE "C" columns do.

-- version: the stream sequence of the last event applied to the row. Rows
-- from before this migration get the checkpoint: not exact, but above every
-- earlier version and below every later one, which is what an ETag needs.
ALTER TABLE users ADD COLUMN version integer NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN version integer NOT NULL DEFAULT 0;
UPDATE users SET version = (SELECT seq FROM projector_checkpoint WHERE id = 1);
UPDATE groups SET version = (SELECT seq FROM projector_checkpoint WHERE id = 1);

-- display_name_lower is NULL on rows from before this migration until the
-- store's backfill (run on open) fills it from data, with user_emails.
ALTER TABLE users ADD COLUMN display_name_lower text;

DROP INDEX users_directory_id_user_name_lower;
CREATE INDEX users_directory_id_user_name_lower_id ON users (directory_id, user_name_lower, id);
CREATE INDEX users_directory_id_display_name_lower_id ON users (directory_id, display_name_lower, id);
CREATE INDEX users_directory_id_created_at_id ON users (directory_id, created_at, id);
CREATE INDEX users_directory_id_updated_at_id ON users (directory_id, updated_at, id);
DROP INDEX groups_directory_id_name_lower;
CREATE INDEX groups_directory_id_name_lower_id ON groups (directory_id, name_lower, id);
CREATE INDEX groups_directory_id_created_at_id ON groups (directory_id, created_at, id);
CREATE INDEX groups_directory_id_updated_at_id ON groups (directory_id, updated_at, id);

-- user_emails: every case-folded email of a user (readmodel.UserEmails), so
-- a SCIM filter on emails.value and FindUsers by email use an index.
CREATE TABLE user_emails (
    user_id      text NOT NULL,
    directory_id text NOT NULL,
    email_lower  text NOT NULL,
    PRIMARY KEY (user_id, email_lower)
);
CREATE INDEX user_emails_directory_id_email_lower ON user_emails (directory_id, email_lower, user_id);

-- The user and group an event is about ('' for none); NULL on events from
-- before this migration until the backfill fills them.
ALTER TABLE projector_events ADD COLUMN user_id text;
ALTER TABLE projector_events ADD COLUMN group_id text;
CREATE INDEX projector_events_user_id_seq ON projector_events (user_id, seq);
CREATE INDEX projector_events_group_id_seq ON projector_events (group_id, seq);
