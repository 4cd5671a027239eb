-- Streaming changes for unknown_types (sql/unknown_schema.sql): the seed rows again (text path),
-- and a row with every default.
INSERT INTO unk SELECT id + 10, bx, ci, li, ls, pa, pc, po, tq, lsn, ts, ps, b1d, b3d, vbd FROM unk WHERE id < 10;
INSERT INTO unk (id) VALUES (20);
