-- Streaming changes for the unchanged-TOAST captures (sql/toast_schema.sql).
-- Every TOASTed column unchanged:
UPDATE toasty SET note = 'changed' WHERE id = 1;
-- One of them changed (small now), the others unchanged:
UPDATE toasty SET note = 'again', t = 'short', a_i4 = '{1,2}' WHERE id = 1;
-- Under REPLICA IDENTITY FULL:
UPDATE toastfull SET note = 'changed' WHERE id = 1;
-- Multi-dimensional arrays, money, unmapped types:
INSERT INTO misc VALUES
  (1, '{{1,2},{3,4}}', '{{a,b},{c,NULL}}', '{{1.5},{2.5},{3.5}}', 12.34, '((0,0),(1,1))', '<(1,1),2>'),
  (2, '{{{1,2}},{{3,4}}}', '{{"x y"}}', '{}', -0.5, NULL, NULL),
  (3, '{1,2}', '{a}', '{1.5}', NULL, NULL, NULL);
DELETE FROM toasty WHERE id = 1;
DELETE FROM toastfull WHERE id = 1;
