-- The reconciler's fencing tokens come from PostgreSQL, the store that checks them: a
-- Redis counter restarts at 1 after Redis loses its data, while reconciler_fence keeps
-- the highest token written, so every later leader would be refused for good.
-- A sequence never goes backwards and is not rolled back with a failed transaction.
CREATE SEQUENCE "reconciler_fence_token_seq" AS BIGINT;

-- Start above every token already written (under the old Redis counter).
SELECT setval('reconciler_fence_token_seq', (SELECT COALESCE(MAX("token"), 0) + 1 FROM "reconciler_fence"), false);
