-- Sample schema and data for the compose pipeline (run once by the postgres image's
-- /docker-entrypoint-initdb.d on an empty volume, in database `shop`).
--
-- Every table has a primary key (StarRocks Primary Key tables need one) and
-- REPLICA IDENTITY FULL: under the default identity an UPDATE that does not touch a TOASTed
-- value sends a placeholder instead of the value, which Routine Load would write over it.

CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'cancelled');

CREATE TABLE customers (
    id          serial PRIMARY KEY,
    email       varchar(200) NOT NULL UNIQUE,
    name        text NOT NULL,
    signed_up   date NOT NULL DEFAULT current_date,
    vip         boolean NOT NULL DEFAULT false
);

CREATE TABLE products (
    sku         varchar(32) PRIMARY KEY,
    title       text NOT NULL,
    price       numeric(10,2) NOT NULL,
    weight_kg   real,
    attributes  jsonb NOT NULL DEFAULT '{}',
    tags        text[]
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id),
    status      order_status NOT NULL DEFAULT 'new',
    placed_at   timestamptz NOT NULL DEFAULT now(),
    shipped_at  timestamp(3),
    total       numeric(12,2) NOT NULL DEFAULT 0,
    token       uuid NOT NULL DEFAULT gen_random_uuid()
);

CREATE TABLE order_items (
    order_id    bigint NOT NULL REFERENCES orders (id),
    line        int NOT NULL,
    sku         varchar(32) NOT NULL REFERENCES products (sku),
    quantity    int NOT NULL,
    unit_price  numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, line)
);

ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE products REPLICA IDENTITY FULL;
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE order_items REPLICA IDENTITY FULL;

INSERT INTO customers (email, name, signed_up, vip)
SELECT format('customer%s@example.com', i), format('Customer %s', i),
       date '2024-01-01' + (i % 365), i % 10 = 0
FROM generate_series(1, 1000) AS i;

INSERT INTO products (sku, title, price, weight_kg, attributes, tags)
SELECT format('SKU-%s', lpad(i::text, 5, '0')), format('Product %s', i),
       round((random() * 200 + 1)::numeric, 2), (i % 50) / 10.0,
       jsonb_build_object('color', (ARRAY['red', 'green', 'blue'])[1 + i % 3], 'size', i % 5),
       ARRAY['tag' || (i % 7), 'tag' || (i % 11)]
FROM generate_series(1, 200) AS i;

INSERT INTO orders (customer_id, status, placed_at, shipped_at)
SELECT 1 + (i % 1000), (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + i % 4]::order_status,
       timestamptz '2024-06-01 00:00:00+00' + i * interval '7 minutes',
       CASE WHEN i % 4 = 2 THEN timestamp '2024-06-02 00:00:00' + i * interval '7 minutes' END
FROM generate_series(1, 5000) AS i;

INSERT INTO order_items (order_id, line, sku, quantity, unit_price)
SELECT o.id, l, format('SKU-%s', lpad((1 + (o.id * 7 + l) % 200)::text, 5, '0')), 1 + l % 3, 0
FROM orders o CROSS JOIN generate_series(1, 3) AS l;

UPDATE order_items i SET unit_price = p.price FROM products p WHERE p.sku = i.sku;
UPDATE orders o SET total = s.total
FROM (SELECT order_id, sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id) s
WHERE s.order_id = o.id;
