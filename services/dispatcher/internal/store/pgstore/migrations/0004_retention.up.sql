-- Retention (delivery.Pruner): finished deliveries are deleted once last
-- updated before the horizon, events once no delivery references them.
--
-- deliveries_finished finds the finished deliveries past the horizon
-- oldest first. Pending deliveries are left out: they are never pruned, and
-- a delivery enters the index only when it finishes, an update that writes
-- index entries anyway (state, in the pending indexes' predicates, changes).
-- Every update that changes updated_at already changes an indexed column,
-- so indexing it turns no HOT update into a non-HOT one (leases stay HOT).
--
-- deliveries_by_event answers "does a delivery still reference this
-- event?", asked for each event deleted, by the pruner and by the foreign
-- key check of that DELETE alike; without it each is a scan of the table.
--
-- On a large existing table, building these blocks writes to deliveries
-- for as long as it takes. IF NOT EXISTS lets an operator build them
-- beforehand without blocking (CREATE INDEX CONCURRENTLY, same names and
-- definitions; check they are valid) and then upgrade.
CREATE INDEX IF NOT EXISTS deliveries_finished ON deliveries (updated_at) WHERE state <> 'pending';
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event_id);

-- prune_state.pruned_through_seq is the highest stream sequence of an event
-- pruned so far. AddEvents ingests no event at or below it: the consumer
-- acknowledges a message only after its deliveries are stored, so any such
-- message is one ingested before (redelivered, or a consumer recreated from
-- the start of the stream), and ingesting it again would send webhooks
-- retention had already let go of.
CREATE TABLE prune_state (
    only_row           boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    pruned_through_seq bigint  NOT NULL
);
INSERT INTO prune_state (pruned_through_seq) VALUES (0);
