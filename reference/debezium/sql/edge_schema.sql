-- Infinite and BC dates and timestamps (bin/capture-types.sh, captures edge_*).
CREATE TABLE edge (
  id   int PRIMARY KEY,
  d    date, ts timestamp, ts3 timestamp(3), tstz timestamptz, t time, tz timetz,
  d_arr date[], ts_arr timestamp[]
);
INSERT INTO edge VALUES
  (1, 'infinity', 'infinity', 'infinity', 'infinity', '13:14:15.123456', '13:14:15.123456+05:30', '{infinity,2024-02-29}', '{infinity}'),
  (2, '-infinity', '-infinity', '-infinity', '-infinity', '00:00:00.000001', '23:59:59.999999-08', '{-infinity}', '{-infinity}'),
  (3, '0044-03-15 BC', '0044-03-15 12:00:00.5 BC', '0044-03-15 12:00:00.5 BC', '0044-03-15 12:00:00.5+00 BC', '24:00:00', '24:00:00+00',
      '{0044-03-15 BC}', '{"0044-03-15 12:00:00.5 BC"}'),
  (4, '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '00:00:00', '00:00:00+00',
      '{0001-01-01}', '{"0001-01-01 00:00:00"}'),
  (5, '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999+00', '12:00:00', '12:00:00-14',
      '{9999-12-31}', '{"9999-12-31 23:59:59.999999"}');
CREATE TABLE barrier (id serial PRIMARY KEY, note text);
