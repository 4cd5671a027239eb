-- Tables for the column-shaping captures (database "cols"; bin/capture-columns.sh):
-- column.include/exclude.list, column.mask.*, column.truncate.*, message.key.columns.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE cust (
  id      int PRIMARY KEY,
  email   varchar(100),
  name    text,
  ssn     char(11),
  code    varchar(2),
  feeling mood,
  score   int,
  photo   bytea,
  bio     text,
  secret  text,
  extra   text DEFAULT 'x'
);
CREATE TABLE orders (
  order_no int PRIMARY KEY,
  cust_id  int NOT NULL,
  region   text NOT NULL,
  amount   numeric(10,2),
  comment  text
);
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE TABLE orders_def (
  order_no int PRIMARY KEY,
  cust_id  int NOT NULL,
  region   text NOT NULL,
  comment  text
);
CREATE TABLE hidden_pk (id int PRIMARY KEY, v text);
CREATE TABLE "Mixed" ("Id" int PRIMARY KEY, "Val" text, other text);
CREATE TABLE nokey (a int, b text);
ALTER TABLE nokey REPLICA IDENTITY FULL;
CREATE TABLE barrier (id serial PRIMARY KEY, note text);
INSERT INTO cust VALUES (100, 'snap@example.com', 'Snapshot Sam', '999-99-9999', 'zz', 'ok', 7, '\x0a0b0c0d', 'snap bio', 's3cret', 'e');
INSERT INTO orders VALUES (1, 100, 'us', 3.25, 'snap order');
INSERT INTO orders_def VALUES (1, 100, 'us', 'snap order');
INSERT INTO hidden_pk VALUES (100, 'snap');
INSERT INTO "Mixed" VALUES (100, 'M', 'O');
INSERT INTO nokey VALUES (100, 'snap');
