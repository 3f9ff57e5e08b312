-- An Idempotency-Key is remembered for IDEMPOTENCY_TTL_SECONDS (the IETF Idempotency-Key
-- draft lets keys expire); reused after that it is a new purchase with an order of its own.
-- A permanent unique (user, key) made the DB writer drop that order's row while applying
-- its stock. Redis enforces the key within its lifetime; the order id stays the primary
-- key, so each order is still stored exactly once. The index stays for lookups.
DROP INDEX "orders_user_id_idempotency_key_key";
CREATE INDEX "orders_user_id_idempotency_key_idx" ON "orders"("user_id", "idempotency_key");
