-- The claim asks, for each candidate delivery, for the first pending
-- delivery of its subject (or directory) at its endpoint. Keyed on
-- (endpoint_id, subject, seq), that lookup competed with
-- deliveries_endpoint_due, which also starts with endpoint_id: on a young
-- table without statistics the planner could take the latter and read the
-- endpoint's whole backlog per candidate (a failing endpoint's backlog made
-- every claim slower, healthy endpoints' included). One generated key per
-- ordering scope gives that lookup an index keyed on exactly what it looks
-- up.
ALTER TABLE deliveries
    ADD COLUMN subject_key   text GENERATED ALWAYS AS (endpoint_id || ' ' || subject) STORED,
    ADD COLUMN directory_key text GENERATED ALWAYS AS (endpoint_id || ' ' || directory_id) STORED;
DROP INDEX deliveries_subject_order;
DROP INDEX deliveries_directory_order;
CREATE INDEX deliveries_subject_head ON deliveries (subject_key, seq) WHERE state = 'pending';
CREATE INDEX deliveries_directory_head ON deliveries (directory_key, seq) WHERE state = 'pending';

-- The claim no longer counts live leases in the table (the claimer passes
-- what it holds per endpoint): deliveries_leased only cost a write per
-- claim, and its dead entries made that count read ever more heap pages
-- between vacuums.
DROP INDEX deliveries_leased;

-- Every query for due deliveries is per endpoint (deliveries_endpoint_due).
-- Kept, this index only cost a write per attempt and offered plans a way
-- to read every endpoint's backlog to find one endpoint's due deliveries.
DROP INDEX deliveries_due;

-- deliveries is a queue: rows are inserted, leased, finished at a high
-- rate. Vacuum and analyze it after 2% of its rows changed rather than the
-- default 20%/10%, so dead index entries and stale estimates do not pile up.
-- Leasing a delivery changes no indexed column: with room left on its page
-- (fillfactor) that update is HOT, writing no index entries.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
    fillfactor = 80);
