-- Changes for the column-shaping captures (after the snapshot of sql/columns_schema.sql).
INSERT INTO cust VALUES (1, 'alice@example.com', 'Alice Anderson', '123-45-6789', 'ab', 'happy', 42,
  '\x0102030405', 'Loves 🍕 pizza', 'pw', 'x');
INSERT INTO cust (id, extra) VALUES (2, NULL);
INSERT INTO cust (id, name, email, bio) VALUES (3, '🍕🍕é', 'ü@x', '');
UPDATE cust SET name = 'Bob' WHERE id = 1;
DELETE FROM cust WHERE id = 2;
INSERT INTO orders VALUES (10, 1, 'eu', 12.50, 'first');
UPDATE orders SET comment = 'second' WHERE order_no = 10;
UPDATE orders SET cust_id = 2 WHERE order_no = 10;
UPDATE orders SET order_no = 11 WHERE order_no = 10;
DELETE FROM orders WHERE order_no = 11;
INSERT INTO orders_def VALUES (10, 1, 'eu', 'first');
UPDATE orders_def SET cust_id = 2 WHERE order_no = 10;
UPDATE orders_def SET order_no = 11 WHERE order_no = 10;
DELETE FROM orders_def WHERE order_no = 11;
INSERT INTO hidden_pk VALUES (1, 'h');
UPDATE hidden_pk SET v = 'i' WHERE id = 1;
UPDATE hidden_pk SET id = 2 WHERE id = 1;
DELETE FROM hidden_pk WHERE id = 2;
INSERT INTO "Mixed" VALUES (1, 'm', 'o');
INSERT INTO nokey VALUES (1, 'n');
UPDATE nokey SET a = 2 WHERE a = 1;
UPDATE nokey SET b = 'nn' WHERE a = 2;
DELETE FROM nokey WHERE a = 2;
