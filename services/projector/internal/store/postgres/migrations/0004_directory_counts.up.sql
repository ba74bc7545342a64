-- Issue 4, continued: each directory's user and group counts, kept by the
-- store in the same statements as the rows (see Tx.endUsers, DeleteUser,
-- UpsertGroup, DeleteGroup, DeleteDirectory), so the total of an
-- unfiltered SCIM list is one row read, not a count(*) over a million users.
CREATE TABLE directory_counts (
    directory_id text COLLATE "C" PRIMARY KEY,
    users        bigint NOT NULL DEFAULT 0,
    groups       bigint NOT NULL DEFAULT 0
);
INSERT INTO directory_counts (directory_id, users, groups)
SELECT directory_id, sum(u), sum(g) FROM (
    SELECT directory_id, count(*) AS u, 0 AS g FROM users GROUP BY directory_id
    UNION ALL
    SELECT directory_id, 0, count(*) FROM groups GROUP BY directory_id
) c GROUP BY directory_id;
