DROP INDEX hook_deliveries_by_outbox_event;
DROP INDEX hook_deliveries_by_time;
DROP INDEX pipeline_events_by_time;
DROP TABLE audit_events;
