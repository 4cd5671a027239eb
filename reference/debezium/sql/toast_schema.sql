-- Schema and rows for the unchanged-TOAST captures (bin/capture-types.sh toast_*, run with
-- snapshot.mode=no_data so that only the streamed changes are captured, not the big values).
-- Every column is stored EXTERNAL (out of line, uncompressed) and holds more than 2 kB, so an
-- UPDATE that does not touch it sends it to pgoutput as 'u' (unchanged TOAST), which Debezium
-- turns into its placeholder, per column type and handling mode.
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');

CREATE TABLE toasty (
  id     int PRIMARY KEY,
  note   text,
  t      text, vc varchar, b bytea, j json, jb jsonb, x xml, n numeric, vb varbit,
  ci     citext, lt ltree, h hstore,
  a_i2   int2[], a_i4 int4[], a_i8 int8[], a_t text[], a_vc varchar[], a_num numeric[],
  a_f8   float8[], a_bool bool[], a_date date[], a_ts timestamp[], a_uuid uuid[], a_jb jsonb[],
  a_b    bytea[], a_mood mood[], a_lt ltree[], a_ci citext[]
);
DO $$
DECLARE c text;
BEGIN
  FOR c IN SELECT attname FROM pg_attribute
           WHERE attrelid = 'toasty'::regclass AND attnum > 0 AND attname NOT IN ('id', 'note') LOOP
    EXECUTE format('ALTER TABLE toasty ALTER COLUMN %I SET STORAGE EXTERNAL', c);
  END LOOP;
END $$;
INSERT INTO toasty VALUES (
  1, 'seed',
  repeat('t', 2100), repeat('v', 2100), decode(repeat('ab', 2100), 'hex'),
  ('{"k":"' || repeat('j', 2100) || '"}')::json, ('{"k":"' || repeat('j', 2100) || '"}')::jsonb,
  ('<a>' || repeat('x', 2100) || '</a>')::xml, repeat('9', 4400)::numeric, repeat('1', 17000)::varbit,
  repeat('C', 2100)::citext, ('a' || repeat('.a', 1100))::ltree, hstore('k', repeat('h', 2100)),
  array_fill(7::int2, ARRAY[1100]), array_fill(7, ARRAY[600]), array_fill(7::int8, ARRAY[300]),
  ARRAY[repeat('s', 2100)], ARRAY[repeat('w', 2100)::varchar], array_fill(1.5::numeric, ARRAY[300]),
  array_fill(2.5::float8, ARRAY[300]), array_fill(true, ARRAY[2200]), array_fill(date '2024-02-29', ARRAY[600]),
  array_fill(timestamp '2024-02-29 13:14:15', ARRAY[300]),
  array_fill('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, ARRAY[150]),
  ARRAY[('"' || repeat('q', 2100) || '"')::jsonb], ARRAY[decode(repeat('cd', 2100), 'hex')],
  array_fill('ok'::mood, ARRAY[600]), ARRAY[('b' || repeat('.b', 1100))::ltree], ARRAY[repeat('D', 2100)::citext]
);

-- REPLICA IDENTITY FULL: the old tuple carries the whole (detoasted) row.
CREATE TABLE toastfull (id int PRIMARY KEY, note text, t text, b bytea, a_i4 int4[]);
ALTER TABLE toastfull REPLICA IDENTITY FULL;
ALTER TABLE toastfull ALTER COLUMN t SET STORAGE EXTERNAL, ALTER COLUMN b SET STORAGE EXTERNAL,
  ALTER COLUMN a_i4 SET STORAGE EXTERNAL;
INSERT INTO toastfull VALUES (1, 'seed', repeat('t', 2100), decode(repeat('ab', 2100), 'hex'), array_fill(7, ARRAY[600]));

-- Multi-dimensional arrays, and types Debezium does not map (include.unknown.datatypes), and
-- money (money.fraction.digits).
CREATE TABLE misc (
  id int PRIMARY KEY, md_i int4[], md_t text[], md_n numeric(5,1)[], m money, bx box, ci circle
);

CREATE TABLE barrier (id serial PRIMARY KEY, note text);
