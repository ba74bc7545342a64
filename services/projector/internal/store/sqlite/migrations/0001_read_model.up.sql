-- The projector's read model. Every row keeps the full resource as protobuf
-- bytes in data, so reads return exactly what the event carried; the other
-- columns exist to be filtered and sorted on. Ids are "<prefix><ULID>" and
-- SQLite compares text by bytes, so id order is creation order. Times are
-- RFC 3339 text in UTC; domains are a JSON array.

CREATE TABLE organizations (
    id         text PRIMARY KEY,
    name       text        NOT NULL,
    domains    text NOT NULL DEFAULT '[]',
    created_at text,
    updated_at text,
    data       blob       NOT NULL
);

CREATE TABLE directories (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    name            text NOT NULL,
    name_lower      text NOT NULL,
    type            text NOT NULL,
    state           text NOT NULL,
    domain          text NOT NULL,
    on_deactivate   text NOT NULL,
    created_at      text,
    updated_at      text,
    data            blob NOT NULL
);
CREATE INDEX directories_organization_id_id ON directories (organization_id, id);

CREATE TABLE users (
    id              text PRIMARY KEY,
    directory_id    text NOT NULL,
    organization_id text NOT NULL,
    idp_id          text NOT NULL,
    user_name       text NOT NULL,
    user_name_lower text NOT NULL,
    email           text NOT NULL,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    state           text NOT NULL,
    created_at      text,
    updated_at      text,
    data            blob NOT NULL
);
CREATE UNIQUE INDEX users_directory_id_id ON users (directory_id, id);
CREATE INDEX users_directory_id_user_name_lower ON users (directory_id, user_name_lower);
CREATE INDEX users_directory_id_idp_id ON users (directory_id, idp_id);

CREATE TABLE groups (
    id              text PRIMARY KEY,
    directory_id    text NOT NULL,
    organization_id text NOT NULL,
    idp_id          text NOT NULL,
    name            text NOT NULL,
    created_at      text,
    updated_at      text,
    data            blob NOT NULL
);
CREATE UNIQUE INDEX groups_directory_id_id ON groups (directory_id, id);
CREATE INDEX groups_directory_id_idp_id ON groups (directory_id, idp_id);

-- One row per (group, user) edge. No foreign keys: the projection applies
-- facts in stream order and must never be blocked by a row it has not seen.
CREATE TABLE memberships (
    directory_id text NOT NULL,
    group_id     text NOT NULL,
    user_id      text NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX memberships_user_id ON memberships (user_id, group_id);
CREATE INDEX memberships_directory_id ON memberships (directory_id);

-- The last applied stream sequence, written in the same transaction as the
-- rows it accounts for.
CREATE TABLE projector_checkpoint (
    id  integer PRIMARY KEY CHECK (id = 1),
    seq integer  NOT NULL CHECK (seq >= 0)
);
INSERT INTO projector_checkpoint (id, seq) VALUES (1, 0);

-- Messages the projection stepped over (malformed or invalid), with why.
CREATE TABLE projector_skips (
    seq        integer PRIMARY KEY,
    subject    text        NOT NULL,
    reason     text        NOT NULL,
    skipped_at text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
