-- Tables for the SMT captures (database "smt"; bin/capture-smt.sh)
CREATE TABLE items (
  id      int PRIMARY KEY,
  name    text NOT NULL,
  qty     int DEFAULT 7,
  price   numeric(10,2),
  note    varchar(20)
);
CREATE TABLE orders_a (id int PRIMARY KEY, item int, amount int);
CREATE TABLE orders_b (id int PRIMARY KEY, item int, amount int);
CREATE TABLE keyless (a int, b text);
ALTER TABLE keyless REPLICA IDENTITY FULL;
CREATE TABLE barrier (id serial PRIMARY KEY, note text);
INSERT INTO items VALUES (1, 'apple', 3, 1.50, 'red'), (2, 'pear', NULL, NULL, NULL);
INSERT INTO orders_a VALUES (1, 1, 10);
INSERT INTO orders_b VALUES (1, 2, 20);
INSERT INTO keyless VALUES (1, 'x');
