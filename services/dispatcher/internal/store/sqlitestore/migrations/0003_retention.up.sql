-- Retention (delivery.Pruner): finished deliveries are deleted once last
-- updated before the horizon, events once no delivery references them.
-- deliveries_finished finds the finished deliveries past the horizon oldest
-- first; deliveries_by_event answers "does a delivery still reference this
-- event?", asked for each event deleted by the pruner and by the foreign
-- key check of that DELETE alike.
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE state <> 'pending';
CREATE INDEX deliveries_by_event ON deliveries (event_id);
