-- streamed before the signal
INSERT INTO items VALUES (6, 'item 6');
-- the signal and, in the same transaction after it, an update the first window will also read
BEGIN;
INSERT INTO dbz_signal VALUES ('sig-1', 'execute-snapshot', '{"data-collections": ["public.items"], "type": "incremental"}');
UPDATE items SET name = 'item 1 updated' WHERE id = 1;
COMMIT;
SELECT pg_sleep(5);
-- after the snapshot: a delete, then the end marker
DELETE FROM items WHERE id = 6;
INSERT INTO items VALUES (100, 'done');
