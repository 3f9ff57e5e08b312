-- CreateEnum
CREATE TYPE "order_status" AS ENUM ('reserved', 'confirmed', 'cancelled', 'expired');

-- CreateTable
CREATE TABLE "skus" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "total_supplied" INTEGER NOT NULL,
    "available" INTEGER NOT NULL,
    "per_user_limit" INTEGER NOT NULL,
    "starts_at" TIMESTAMPTZ(3),
    "ends_at" TIMESTAMPTZ(3),
    "reservation_ttl_seconds" INTEGER NOT NULL,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "last_sequence" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "skus_pkey" PRIMARY KEY ("id"),
    -- Not expressible in schema.prisma: the database itself refuses negative stock.
    CONSTRAINT "skus_available_non_negative" CHECK ("available" >= 0),
    CONSTRAINT "skus_available_within_supplied" CHECK ("available" <= "total_supplied")
);

-- CreateTable
CREATE TABLE "orders" (
    "id" UUID NOT NULL,
    "sku_id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,
    "status" "order_status" NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "last_sequence" INTEGER NOT NULL,

    CONSTRAINT "orders_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "orders_quantity_positive" CHECK ("quantity" > 0)
);

-- CreateTable
CREATE TABLE "stock_events" (
    "sku_id" TEXT NOT NULL,
    "sequence" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "delta" INTEGER NOT NULL,
    "stock_after" INTEGER NOT NULL,
    "order_id" UUID,
    "payload" JSONB NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "applied_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "stock_events_pkey" PRIMARY KEY ("sku_id","sequence")
);

-- CreateTable
CREATE TABLE "pipeline_anomalies" (
    "id" BIGSERIAL NOT NULL,
    "kind" TEXT NOT NULL,
    "sku_id" TEXT,
    "topic" TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "offset" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pipeline_anomalies_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "alert_incidents" (
    "id" BIGSERIAL NOT NULL,
    "sku_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "resolved_at" TIMESTAMPTZ(3),
    "redis_available" INTEGER,
    "db_available" INTEGER,
    "redis_sequence" INTEGER,
    "db_sequence" INTEGER,
    "detail" JSONB NOT NULL,

    CONSTRAINT "alert_incidents_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_endpoints" (
    "url" TEXT NOT NULL,
    "disabled_at" TIMESTAMPTZ(3),
    "reason" TEXT,

    CONSTRAINT "webhook_endpoints_pkey" PRIMARY KEY ("url")
);

-- CreateTable
CREATE TABLE "webhook_deliveries" (
    "id" BIGSERIAL NOT NULL,
    "message_id" TEXT NOT NULL,
    "endpoint_url" TEXT NOT NULL,
    "incident_id" BIGINT NOT NULL,
    "event_type" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_status_code" INTEGER,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "orders_sku_id_status_idx" ON "orders"("sku_id", "status");

-- CreateIndex
CREATE UNIQUE INDEX "orders_user_id_idempotency_key_key" ON "orders"("user_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "pipeline_anomalies_kind_created_at_idx" ON "pipeline_anomalies"("kind", "created_at");

-- CreateIndex
CREATE INDEX "alert_incidents_status_last_seen_at_idx" ON "alert_incidents"("status", "last_seen_at");

-- One open incident per (sku, kind): a partial unique index, not expressible in schema.prisma.
CREATE UNIQUE INDEX "alert_incidents_one_open_per_sku_kind" ON "alert_incidents"("sku_id", "kind") WHERE "status" = 'open';

-- CreateIndex
CREATE INDEX "webhook_deliveries_status_next_attempt_at_idx" ON "webhook_deliveries"("status", "next_attempt_at");

-- CreateIndex
CREATE UNIQUE INDEX "webhook_deliveries_message_id_endpoint_url_key" ON "webhook_deliveries"("message_id", "endpoint_url");

-- AddForeignKey
ALTER TABLE "orders" ADD CONSTRAINT "orders_sku_id_fkey" FOREIGN KEY ("sku_id") REFERENCES "skus"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "stock_events" ADD CONSTRAINT "stock_events_sku_id_fkey" FOREIGN KEY ("sku_id") REFERENCES "skus"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_endpoint_url_fkey" FOREIGN KEY ("endpoint_url") REFERENCES "webhook_endpoints"("url") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_incident_id_fkey" FOREIGN KEY ("incident_id") REFERENCES "alert_incidents"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
