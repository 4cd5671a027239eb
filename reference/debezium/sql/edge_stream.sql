-- The seed rows again under new keys, streamed (pgoutput text).
INSERT INTO edge SELECT id + 10, d, ts, ts3, tstz, t, tz, d_arr, ts_arr FROM edge WHERE id < 10;
