-- Changes for the source-type propagation captures (after the snapshot of sql/propagate_schema.sql).
INSERT INTO ptypes (i4, n, n102, vc20, c5, avc, an) VALUES (8, 99.125, 1.5, 'stream', 'ab', '{q}', '{2.5,NULL}');
UPDATE ptypes SET vc = 'upd', n5 = 7 WHERE id = 1;
DELETE FROM ptypes WHERE id = 2;
INSERT INTO other VALUES (2, 'p', 2.50);
