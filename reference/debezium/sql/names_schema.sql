-- Tables for the name-adjustment captures (database "cols"; bin/capture-columns.sh names_*):
-- schema.name.adjustment.mode, field.name.adjustment.mode, topic.delimiter.
CREATE TABLE "my-table" (id int PRIMARY KEY, "my-col" text, "1st" int, "naïve" text, ok text DEFAULT 'd');
CREATE TABLE "Ünï" ("ключ" int PRIMARY KEY, "v.w" text);
CREATE TABLE barrier (id serial PRIMARY KEY, note text);
INSERT INTO "my-table" VALUES (1, 'a', 2, 'b', 'c');
INSERT INTO "Ünï" VALUES (1, 'x');
