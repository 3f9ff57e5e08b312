-- CreateTable
CREATE TABLE "reconciler_fence" (
    "id" INTEGER NOT NULL,
    "token" BIGINT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "reconciler_fence_pkey" PRIMARY KEY ("id")
);

INSERT INTO "reconciler_fence" ("id", "token") VALUES (1, 0);
