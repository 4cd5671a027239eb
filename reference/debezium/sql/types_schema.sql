-- Schema and seed rows for the type captures (bin/capture-types.sh): bit strings, ltree, citext,
-- time types at every precision, arrays of many element types, numeric NaN/±Infinity.
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');

CREATE TABLE bits (
  id   int PRIMARY KEY,
  b1   bit(1), b2 bit(2), b8 bit(8), b9 bit(9), b17 bit(17), b64 bit(64),
  vb   varbit, vb1 varbit(1), vb5 varbit(5), vb33 varbit(33),
  vba  varbit[]
);
INSERT INTO bits VALUES
  (1, B'1', B'10', B'10100101', B'100000001', B'00000000000000001', B'1000000000000000000000000000000000000000000000000000000000000001',
      B'110', B'1', B'101', B'100000000000000000000000000000001', '{101,0}'),
  (2, B'0', B'00', B'00000000', B'000000000', B'00000000000000000', B'0000000000000000000000000000000000000000000000000000000000000000',
      B'', B'0', B'0', B'0', '{}'),
  (3, B'1', B'01', B'11111111', B'011111111', B'10000000000000000', B'0111111111111111111111111111111111111111111111111111111111111110',
      B'0000000000000000000000001', B'0', B'00001', B'11', NULL),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE ext (
  id   int PRIMARY KEY,
  path ltree, paths ltree[],
  ci   citext, cis citext[]
);
INSERT INTO ext VALUES
  (1, 'Top.Science.Astronomy', '{Top.A,Top.B_c,x}', 'MiXeD Case', '{A,"b c","q\"uote"}'),
  (2, '', '{}', '', '{}'),
  (3, 'a', '{a}', E'tab\there "q" \\ é 😀', '{NULL,x}'),
  (4, NULL, NULL, NULL, NULL);

CREATE TABLE times (
  id    int PRIMARY KEY,
  t     time, t0 time(0), t1 time(1), t2 time(2), t3 time(3), t4 time(4), t5 time(5), t6 time(6),
  tz    timetz, tz0 timetz(0), tz1 timetz(1), tz3 timetz(3), tz4 timetz(4), tz6 timetz(6),
  ts    timestamp, ts0 timestamp(0), ts1 timestamp(1), ts2 timestamp(2), ts3 timestamp(3),
        ts4 timestamp(4), ts5 timestamp(5), ts6 timestamp(6),
  tstz  timestamptz, tstz0 timestamptz(0), tstz1 timestamptz(1), tstz2 timestamptz(2),
        tstz3 timestamptz(3), tstz4 timestamptz(4), tstz5 timestamptz(5), tstz6 timestamptz(6)
);
-- v(t, tz, ts, tstz) writes the same literal into every precision of a kind (PostgreSQL rounds).
INSERT INTO times
SELECT id, t, t, t, t, t, t, t, t, tz, tz, tz, tz, tz, tz, ts, ts, ts, ts, ts, ts, ts, ts,
       tstz, tstz, tstz, tstz, tstz, tstz, tstz, tstz
FROM (VALUES
  (1, time '13:14:15.123456', timetz '13:14:15.123456+05:30', timestamp '2024-02-29 13:14:15.123456', timestamptz '2024-02-29 13:14:15.123456+01'),
  (2, time '23:59:59.999999', timetz '23:59:59.999999-08', timestamp '1999-12-31 23:59:59.999999', timestamptz '1999-12-31 23:59:59.999999+00'),
  (3, time '00:00:00', timetz '00:00:00+00', timestamp '1970-01-01 00:00:00', timestamptz '1970-01-01 00:00:00+00'),
  (4, time '12:00:00.5', timetz '12:00:00.05+14', timestamp '1969-12-31 23:59:59.9995', timestamptz '1969-12-31 23:59:59.000001+00'),
  (5, time '24:00:00', timetz '00:00:00.000001-14:59', timestamp 'infinity', timestamptz '-infinity'),
  (6, NULL, NULL, NULL, NULL)
) AS v(id, t, tz, ts, tstz);

CREATE TABLE arrays (
  id       int PRIMARY KEY,
  a_int2   int2[], a_int8 int8[], a_f4 float4[], a_f8 float8[],
  a_num    numeric(10,2)[], a_numu numeric[], a_bool bool[],
  a_date   date[], a_time time[], a_time3 time(3)[], a_timetz timetz[],
  a_ts     timestamp[], a_ts3 timestamp(3)[], a_tstz timestamptz[],
  a_uuid   uuid[], a_json json[], a_jsonb jsonb[], a_bytea bytea[],
  a_vc     varchar(10)[], a_bpchar char(3)[], a_inet inet[], a_cidr cidr[], a_mac macaddr[],
  a_mood   mood[], a_oid oid[], a_i4r int4range[],
  a_interval interval[], a_money money[], a_name name[], a_xml xml[], a_point point[]
);
INSERT INTO arrays VALUES
  (1, '{1,-32768,NULL}', '{9223372036854775807,0}', '{0.1,3.4e38,NaN,-Infinity}', '{1e-4,1e7,Infinity}',
      '{12.30,-0.01,NULL}', '{1.5,NaN,0,-12345678901234567890.123}', '{t,f,NULL}',
      '{2024-02-29,1970-01-01,infinity}', '{13:14:15.123456,00:00:00}', '{13:14:15.123,23:59:59.999}', '{13:14:15.5+05:30,00:00:00+00}',
      '{"2024-02-29 13:14:15.123456","1970-01-01 00:00:00"}', '{"2024-02-29 13:14:15.123"}', '{"2024-02-29 13:14:15.5+01",infinity}',
      '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', ARRAY['{"a": 1}', '[1, 2]']::json[], ARRAY['{"b": [1, {"c": null}], "a": 1}']::jsonb[], '{"\\x00ff",NULL}',
      '{a,"b,c",""}', '{ab,x}', '{192.168.0.1,::1/128}', '{10.0.0.0/8}', '{08:00:2b:01:02:03}',
      '{sad,happy}', '{1,4294967295}', '{"[1,5)",empty}',
      '{"1 day",-00:00:01}', '{1.50,-2}', '{a,b}', ARRAY['<a/>']::xml[], '{"(1,2)"}'),
  (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
      '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE nums (id int PRIMARY KEY, n numeric, n102 numeric(10,2), f4 real, f8 double precision);
-- numeric(p,s) holds NaN but not infinity
INSERT INTO nums VALUES (1, 'NaN', 'NaN', 'NaN', 'NaN'), (2, 'Infinity', 1.5, 'Infinity', 'Infinity'),
  (3, '-Infinity', -1.5, '-Infinity', '-Infinity'), (4, 0, 0, 0, -0.0);

CREATE TABLE pkchg (id int PRIMARY KEY, v text);
INSERT INTO pkchg VALUES (1, 'one');

CREATE TABLE barrier (id serial PRIMARY KEY, note text);
