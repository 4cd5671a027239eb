-- Tables for the source-type propagation captures (database "cols"; bin/capture-columns.sh
-- propagate_*): column.propagate.source.type / datatype.propagate.source.type over a range of types.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN shortstr AS varchar(7);
CREATE TABLE ptypes (
  id    serial PRIMARY KEY,
  i2    smallint, i4 int NOT NULL DEFAULT 7, i8 bigint,
  n     numeric, n102 numeric(10,2), n5 numeric(5), n30 numeric(3,0),
  f4    real, f8 double precision, m money,
  b     boolean,
  vc    varchar, vc20 varchar(20), c1 char, c5 char(5), t text, nm name,
  by    bytea, u uuid, j json, jb jsonb, x xml,
  d     date, tm time, tm3 time(3), tmtz timetz, ts timestamp, ts0 timestamp(0),
  tstz  timestamptz, tstz3 timestamptz(3), iv interval, iv2 interval(2),
  bt    bit(3), vb varbit, vb8 varbit(8),
  ip    inet, cidr cidr, mac macaddr,
  pt    point,
  e     mood, dm posint, ds shortstr,
  ai    int[], avc varchar(10)[], an numeric(5,1)[], ann numeric[], at text[],
  oid_  oid
);
COMMENT ON COLUMN ptypes.vc20 IS 'a short string';
CREATE TABLE other (id int PRIMARY KEY, vc20 varchar(20), n102 numeric(10,2));
CREATE TABLE barrier (id serial PRIMARY KEY, note text);
INSERT INTO ptypes (i2, i4, i8, n, n102, n5, n30, f4, f8, m, b, vc, vc20, c1, c5, t, nm, by, u, j, jb, x,
  d, tm, tm3, tmtz, ts, ts0, tstz, tstz3, iv, iv2, bt, vb, vb8, ip, cidr, mac, pt, e, dm, ai, avc, an, at, oid_)
VALUES (1, 2, 3, 1.5, 12.34, 12345, 123, 1.25, 2.5, 9.99, true, 'v', 'v20', 'c', 'c5', 't', 'nm',
  '\x01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a":1}', '{"b":2}', '<x/>',
  '2024-01-02', '03:04:05', '03:04:05.123', '03:04:05+02', '2024-01-02 03:04:05', '2024-01-02 03:04:05',
  '2024-01-02 03:04:05+00', '2024-01-02 03:04:05.123+00', '1 day', '1.25 seconds', B'101', B'11', B'1010',
  '10.0.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', '(1,2)', 'ok', 5, '{1,2}', '{a,b}', '{1.5}', '{x}', 42);
INSERT INTO other VALUES (1, 'o', 1.00);
