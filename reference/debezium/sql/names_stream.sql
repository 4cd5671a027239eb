-- Changes for the name-adjustment captures.
INSERT INTO "my-table" VALUES (2, 'aa', 3, 'bb', NULL);
UPDATE "my-table" SET id = 3 WHERE id = 2;
DELETE FROM "my-table" WHERE id = 3;
INSERT INTO "Ünï" VALUES (2, 'y');
