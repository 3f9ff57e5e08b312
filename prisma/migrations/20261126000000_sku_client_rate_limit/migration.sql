-- A SKU's own client-address rate limit, beside its own buyer limit (issue 11: limits
-- configurable per deployment and per SKU). Null: the deployment's RATE_LIMIT_CLIENT_PER_S.
ALTER TABLE "skus"
    ADD COLUMN "client_rate_per_second" DOUBLE PRECISION,
    ADD COLUMN "client_burst" INTEGER,
    ADD CONSTRAINT "skus_client_rate_limit_whole"
        CHECK (("client_rate_per_second" IS NULL) = ("client_burst" IS NULL)),
    ADD CONSTRAINT "skus_client_rate_limit_valid"
        CHECK ("client_rate_per_second" IS NULL OR ("client_rate_per_second" >= 0 AND "client_burst" >= 1));
