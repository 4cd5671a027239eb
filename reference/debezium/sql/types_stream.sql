-- Streaming changes for the type captures: the seed rows again under new keys (the text path),
-- an update that changes nothing but a bit string, a primary-key change, and deletes.
INSERT INTO bits SELECT id + 10, b1, b2, b8, b9, b17, b64, vb, vb1, vb5, vb33, vba FROM bits WHERE id < 10;
UPDATE bits SET b8 = B'00000001', vb = B'1' WHERE id = 11;
INSERT INTO ext SELECT id + 10, path, paths, ci, cis FROM ext WHERE id < 10;
INSERT INTO times SELECT id + 10, t, t0, t1, t2, t3, t4, t5, t6, tz, tz0, tz1, tz3, tz4, tz6,
  ts, ts0, ts1, ts2, ts3, ts4, ts5, ts6, tstz, tstz0, tstz1, tstz2, tstz3, tstz4, tstz5, tstz6 FROM times WHERE id < 10;
INSERT INTO arrays SELECT id + 10, a_int2, a_int8, a_f4, a_f8, a_num, a_numu, a_bool, a_date, a_time, a_time3, a_timetz,
  a_ts, a_ts3, a_tstz, a_uuid, a_json, a_jsonb, a_bytea, a_vc, a_bpchar, a_inet, a_cidr, a_mac, a_mood, a_oid, a_i4r,
  a_interval, a_money, a_name, a_xml, a_point FROM arrays WHERE id < 10;
INSERT INTO nums SELECT id + 10, n, n102, f4, f8 FROM nums WHERE id < 10;
UPDATE pkchg SET id = 2 WHERE id = 1;
DELETE FROM bits WHERE id = 13;
DELETE FROM pkchg WHERE id = 2;
