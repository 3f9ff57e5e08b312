--[[
  Warms a SKU's Redis state from PostgreSQL (after creation, or after Redis lost it):
  the SKU hash, the units each user holds, and the live orders with their expiries.
  Refuses when the state is present, so a stale copy can never overwrite live stock.
  No event: this copies the durable record, it changes nothing.

  Input (3 + one key per live order; all share the SKU partition's hash tag):
    KEYS[1] sku state hash   KEYS[2] per-user held units hash   KEYS[3] expiry index (zset)
    KEYS[4..] order hashes, in the order of the live orders below
    ARGV[1] sku id   ARGV[2] available   ARGV[3] supplied   ARGV[4] per-user limit
    ARGV[5] startsAt ms (0 = open)   ARGV[6] endsAt ms (0 = open)   ARGV[7] reservation ttl s
    ARGV[8] paused (0/1)   ARGV[9] sequence
    ARGV[10..] live orders, 7 values each:
      orderId, userId, quantity, status, createdAt, expiresAt, idempotencyKey
  Output:
    {1}   loaded
    {-12} already present
]]
local skuKey = KEYS[1]
local usersKey = KEYS[2]
local expiriesKey = KEYS[3]

local skuId = ARGV[1]

if redis.call('EXISTS', skuKey) == 1 then
  return {-12}
end

-- Writes.
redis.call('DEL', usersKey, expiriesKey)
redis.call('HSET', skuKey, 'available', ARGV[2], 'supplied', ARGV[3], 'limit', ARGV[4],
  'startsAt', ARGV[5], 'endsAt', ARGV[6], 'ttl', ARGV[7], 'paused', ARGV[8], 'seq', ARGV[9])
local n = 0
while ARGV[10 + n * 7] do
  local base = 10 + n * 7
  local orderId, userId, quantity, status = ARGV[base], ARGV[base + 1], tonumber(ARGV[base + 2]), ARGV[base + 3]
  local createdAt, expiresAt, idemKey = ARGV[base + 4], ARGV[base + 5], ARGV[base + 6]
  redis.call('HSET', KEYS[4 + n], 'user', userId, 'sku', skuId, 'quantity', quantity,
    'status', status, 'createdAt', createdAt, 'expiresAt', expiresAt, 'idemKey', idemKey)
  redis.call('HINCRBY', usersKey, userId, quantity)
  if status == 'reserved' then
    redis.call('ZADD', expiriesKey, expiresAt, skuId .. ':' .. orderId)
  end
  n = n + 1
end
return {1}
