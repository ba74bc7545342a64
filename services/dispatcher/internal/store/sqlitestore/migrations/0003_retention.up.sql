-- Retention (delivery.Pruner): finished deliveries are deleted once last
-- updated before the horizon, events once no delivery references them.
-- deliveries_finished finds the finished deliveries past the horizon oldest
-- first; deliveries_by_event answers "does a delivery still reference this
-- event?", asked for each event deleted by the pruner and by the foreign
-- key check of that DELETE alike.
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE state <> 'pending';
CREATE INDEX deliveries_by_event ON deliveries (event_id);

-- prune_state.pruned_through_seq is the highest stream sequence of an event
-- pruned so far. AddEvents ingests no event at or below it: the consumer
-- acknowledges a message only after its deliveries are stored, so any such
-- message is one ingested before (redelivered, or a consumer recreated from
-- the start of the stream), and ingesting it again would send webhooks
-- retention had already let go of.
CREATE TABLE prune_state (
    pruned_through_seq INTEGER NOT NULL
);
INSERT INTO prune_state (pruned_through_seq) VALUES (0);
