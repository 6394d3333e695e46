-- 1. As a superuser: an owner role for the schema, used only to run migrations, and the
--    application's role, with a schema of its own for its read models.
CREATE ROLE es_owner LOGIN;
CREATE ROLE es_app LOGIN;
CREATE SCHEMA es AUTHORIZATION es_owner;
CREATE SCHEMA es_app AUTHORIZATION es_app;

-- 2. As es_owner:  esframework migrate --dsn "postgresql://es_owner@HOST/DB" --schema es

-- 3. As es_owner: the application may append and read events, but never change or remove
--    them (the table's triggers refuse that too, for every role), and may keep snapshots
--    and subscription checkpoints. Positions are assigned by a function that runs with the
--    owner's rights, so the application needs no UPDATE on events. Subscriptions park
--    events that keep failing, and take them off again to retry them or to rebuild. It
--    reads archived events, and truncates streams (a tombstone records its truncation
--    too); the archiving pass runs with the owner's rights, so it needs no DELETE.
GRANT USAGE ON SCHEMA es TO es_app;
GRANT SELECT, INSERT ON es.events TO es_app;
GRANT USAGE ON SEQUENCE es.events_insert_order TO es_app;
GRANT SELECT, INSERT, UPDATE ON es.snapshots, es.subscription_checkpoints TO es_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON es.subscription_dead_letters TO es_app;
GRANT SELECT ON es.events_archive TO es_app;
GRANT SELECT, INSERT, UPDATE ON es.stream_truncations TO es_app;
-- Saves make keys for new data subjects; forgetting overwrites a key with NULL.
GRANT SELECT, INSERT, UPDATE ON es.personal_data_keys TO es_app;
