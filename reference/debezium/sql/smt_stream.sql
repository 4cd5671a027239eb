-- Streaming changes for the SMT captures
INSERT INTO items VALUES (3, 'plum', 5, 0.99, 'blue');
INSERT INTO items (id, name) VALUES (4, 'fig');
UPDATE items SET qty = 9, note = NULL WHERE id = 1;
DELETE FROM items WHERE id = 2;
UPDATE items SET id = 30 WHERE id = 3;
INSERT INTO orders_a VALUES (2, 3, 11);
INSERT INTO orders_b VALUES (2, 4, 21);
DELETE FROM orders_b WHERE id = 1;
INSERT INTO keyless VALUES (2, 'y');
DELETE FROM keyless WHERE a = 1;
