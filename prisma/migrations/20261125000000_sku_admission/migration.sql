-- Admission control per SKU (issue 11): the waiting room, the qualification hook and the
-- SKU's own buyer rate limit. Defaults leave every existing SKU as it was: no waiting
-- room, no qualification, the deployment's rate limit. The API loads these into the SKU's
-- Redis hash, where the purchase and queue scripts read them.
ALTER TABLE "skus"
    ADD COLUMN "waiting_room" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "admissions_per_second" DOUBLE PRECISION,
    ADD COLUMN "admissions_per_unit_left" DOUBLE PRECISION,
    ADD COLUMN "admission_ttl_seconds" INTEGER NOT NULL DEFAULT 120,
    ADD COLUMN "qualification_required" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "buyer_rate_per_second" DOUBLE PRECISION,
    ADD COLUMN "buyer_burst" INTEGER,
    -- Bumped by every change of the settings: Redis takes a change only when it is newer
    -- than the one it holds, so two changes racing end the same in both stores.
    ADD COLUMN "admission_version" INTEGER NOT NULL DEFAULT 0,
    -- Not expressible in schema.prisma: the database itself refuses settings the API would.
    ADD CONSTRAINT "skus_admissions_per_second_positive"
        CHECK ("admissions_per_second" IS NULL OR "admissions_per_second" > 0),
    ADD CONSTRAINT "skus_admissions_per_unit_left_positive"
        CHECK ("admissions_per_unit_left" IS NULL OR "admissions_per_unit_left" > 0),
    ADD CONSTRAINT "skus_waiting_room_has_a_rate"
        CHECK (NOT "waiting_room" OR "admissions_per_second" IS NOT NULL OR "admissions_per_unit_left" IS NOT NULL),
    ADD CONSTRAINT "skus_admission_ttl_positive" CHECK ("admission_ttl_seconds" > 0),
    ADD CONSTRAINT "skus_buyer_rate_limit_whole"
        CHECK (("buyer_rate_per_second" IS NULL) = ("buyer_burst" IS NULL)),
    ADD CONSTRAINT "skus_buyer_rate_limit_valid"
        CHECK ("buyer_rate_per_second" IS NULL OR ("buyer_rate_per_second" >= 0 AND "buyer_burst" >= 1));

-- The admission pass lists the SKUs whose waiting room is on, a few times a second at
-- most: a partial index keeps that read small however large the catalog grows.
CREATE INDEX "skus_waiting_room_idx" ON "skus"("created_at") WHERE "waiting_room";
