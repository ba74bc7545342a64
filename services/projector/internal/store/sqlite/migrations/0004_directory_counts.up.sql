-- Issue 4, continued: each directory's user and group counts, kept by
-- triggers in the same transaction as the rows, so the total of an
-- unfiltered SCIM list is one row read, not a count(*) over the directory.
-- An upsert that updates fires the UPDATE trigger only.
CREATE TABLE directory_counts (
    directory_id text PRIMARY KEY,
    users        integer NOT NULL DEFAULT 0,
    groups       integer NOT NULL DEFAULT 0
);
INSERT INTO directory_counts (directory_id, users, groups)
SELECT directory_id, sum(u), sum(g) FROM (
    SELECT directory_id, count(*) AS u, 0 AS g FROM users GROUP BY directory_id
    UNION ALL
    SELECT directory_id, 0, count(*) FROM groups GROUP BY directory_id
) GROUP BY directory_id;

CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
    INSERT INTO directory_counts (directory_id, users) VALUES (NEW.directory_id, 1)
        ON CONFLICT (directory_id) DO UPDATE SET users = users + 1;
END;
CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
    UPDATE directory_counts SET users = users - 1 WHERE directory_id = OLD.directory_id;
END;
CREATE TRIGGER users_count_move AFTER UPDATE OF directory_id ON users
WHEN OLD.directory_id <> NEW.directory_id BEGIN
    UPDATE directory_counts SET users = users - 1 WHERE directory_id = OLD.directory_id;
    INSERT INTO directory_counts (directory_id, users) VALUES (NEW.directory_id, 1)
        ON CONFLICT (directory_id) DO UPDATE SET users = users + 1;
END;
CREATE TRIGGER groups_count_insert AFTER INSERT ON groups BEGIN
    INSERT INTO directory_counts (directory_id, groups) VALUES (NEW.directory_id, 1)
        ON CONFLICT (directory_id) DO UPDATE SET groups = groups + 1;
END;
CREATE TRIGGER groups_count_delete AFTER DELETE ON groups BEGIN
    UPDATE directory_counts SET groups = groups - 1 WHERE directory_id = OLD.directory_id;
END;
CREATE TRIGGER groups_count_move AFTER UPDATE OF directory_id ON groups
WHEN OLD.directory_id <> NEW.directory_id BEGIN
    UPDATE directory_counts SET groups = groups - 1 WHERE directory_id = OLD.directory_id;
    INSERT INTO directory_counts (directory_id, groups) VALUES (NEW.directory_id, 1)
        ON CONFLICT (directory_id) DO UPDATE SET groups = groups + 1;
END;
-- A deleted directory's rows are gone; so is its count row.
CREATE TRIGGER directories_count_delete AFTER DELETE ON directories BEGIN
    DELETE FROM directory_counts WHERE directory_id = OLD.id;
END;
