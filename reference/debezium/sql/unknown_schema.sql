-- Types Debezium has no schema for, read with include.unknown.datatypes=true (bin/capture-types.sh
-- unknown_types), in the snapshot and in the stream; and defaults of bit/varbit columns.
CREATE TABLE unk (
  id   int PRIMARY KEY,
  bx   box, ci circle, li line, ls lseg, pa path, pc path, po polygon,
  tq   tsquery, lsn pg_lsn, ts txid_snapshot, ps pg_snapshot,
  b1d  bit(1) DEFAULT B'1', b3d bit(3) DEFAULT B'101', vbd varbit(5) DEFAULT B'11'
);
INSERT INTO unk VALUES
  (1, '((0,0),(1.5,-2))', '<(1e+20,1e-05),0.25>', '{1,-1,0}', '[(0,0),(1,1)]', '[(0,0),(1,1),(2,0)]',
      '((0,0),(1,1),(2,0))', '((0,0),(1,1),(1,0))', 'fat & (rat | cat)', '16/B374D848',
      '10:20:10,14,15', '10:20:10,14,15', B'0', B'011', B'10101'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE barrier (id serial PRIMARY KEY, note text);
