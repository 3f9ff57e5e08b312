--[[
  Decides one purchase: checks, then deducts stock, counts the user's units, records
  the order (reserved, with its expiry), indexes the expiry and appends one event.
  The order key doubles as the idempotency record: the caller derives orderId from the
  user's Idempotency-Key claim, so a retry arrives with the same orderId and is replayed.

  Input:
    KEYS[1] sku state hash        KEYS[2] per-user held units hash
    KEYS[3] order hash            KEYS[4] expiry index (zset)
    KEYS[5] partition event stream
    KEYS[6] claims restored after a loss of Redis's data (claim key -> order id)
    ARGV[1] sku id   ARGV[2] user id   ARGV[3] quantity   ARGV[4] order id
    ARGV[5] idempotency key   ARGV[6] the claim's key name (a field of KEYS[6], not a key)
  Output (the order layout every order script answers with):
    {1, 'reserved', quantity, createdAt, expiresAt, user, available}   order created
    {2, status, quantity, createdAt, expiresAt, user}                  replay of the existing order
    {-1}  SKU state missing (rebuild from PostgreSQL; never treated as zero)
    {-2}  sale not open (before startsAt or after endsAt)
    {-3, held}       per-user limit would be exceeded
    {-4, available}  not enough stock
    {-5}  order id exists for another user or SKU (idempotency conflict)
    {-6}  sales paused (repair in progress)
    {-13, key}  a key holds the wrong type: refused before any write
    {-16, orderId}  the rebuild restored this key's claim to another order while the
                    caller held a placeholder: replay that order instead of buying again
]]
local skuKey = KEYS[1]
local usersKey = KEYS[2]
local orderKey = KEYS[3]
local expiriesKey = KEYS[4]
local eventsKey = KEYS[5]
local restoredKey = KEYS[6]

local skuId = ARGV[1]
local userId = ARGV[2]
local quantity = tonumber(ARGV[3])
local orderId = ARGV[4]
local idemKey = ARGV[5]
local claimName = ARGV[6]

--- @include "nowMs"

-- A key of the wrong type must refuse the purchase before any write (Redis does not undo
-- a script's earlier writes when a later one fails). No TYPE calls: each key is proven by
-- the first command that touches it, answered as -13 instead of raised, and every key that
-- is only written is written first, so a refusal leaves nothing behind.
local function wrongType(reply)
  return type(reply) == 'table' and reply['err'] ~= nil
end

-- Checks: nothing is written until every one has passed.
local sku = redis.call('HMGET', skuKey, 'available', 'limit', 'startsAt', 'endsAt', 'ttl', 'paused',
  'claimsRestoredUntil', 'seq', 'supplied')
if not sku[1] then
  return {-1}
end

local existing = redis.pcall('HMGET', orderKey, 'user', 'sku', 'quantity', 'status', 'createdAt', 'expiresAt')
if wrongType(existing) then
  return {-13, orderKey}
end
if existing[1] then
  if existing[1] ~= userId or existing[2] ~= skuId or tonumber(existing[3]) ~= quantity then
    return {-5}
  end
  return {2, existing[4], tonumber(existing[3]), tonumber(existing[5]), tonumber(existing[6]), existing[1]}
end

local now = nowMs()
-- Only for a while after a rebuild (the field is absent otherwise): the caller may have
-- claimed its key before the rebuild restored the claim to the order PostgreSQL has.
if sku[7] and tonumber(sku[7]) > now then
  local restored = redis.call('HGET', restoredKey, claimName)
  if restored and restored ~= orderId then
    return {-16, restored}
  end
end

if sku[6] == '1' then
  return {-6}
end

local startsAt = tonumber(sku[3])
local endsAt = tonumber(sku[4])
if (startsAt > 0 and now < startsAt) or (endsAt > 0 and now >= endsAt) then
  return {-2}
end

local held = redis.pcall('HGET', usersKey, userId)
if wrongType(held) then
  return {-13, usersKey}
end
held = tonumber(held or '0')
if held + quantity > tonumber(sku[2]) then
  return {-3, held}
end

local available = tonumber(sku[1])
if available < quantity then
  return {-4, available}
end

-- The event, as JSON without cjson (building and encoding a table took a fifth of the
-- script's time). Every string in it matches ID_PATTERN, ORDER_ID_PATTERN or
-- IDEMPOTENCY_KEY_PATTERN (src/shared/keys.ts), none of which admits a character JSON
-- escapes (test/unit/keys.test.ts keeps it so). Formatted before any write: a malformed
-- SKU hash fails here, with nothing written.
local expiresAt = now + tonumber(sku[5]) * 1000
local seq = tonumber(sku[8] or '0') + 1
local event = string.format('{"v":1,"type":"order.reserved","sku":"%s","seq":%d,"delta":%d,' ..
  '"stockAfter":%d,"suppliedAfter":%d,"at":%d,"orderId":"%s","userId":"%s","quantity":%d,' ..
  '"status":"reserved","idempotencyKey":"%s","createdAt":%d,"expiresAt":%d}',
  skuId, seq, -quantity, available - quantity, tonumber(sku[9]), now, orderId, userId, quantity,
  idemKey, now, expiresAt)

-- Writes. The expiry index and the stream first: they are the keys not read above. A
-- refused stream takes back the expiry entry, which leaves the index as it was.
local expiry = skuId .. ':' .. orderId
if wrongType(redis.pcall('ZADD', expiriesKey, expiresAt, expiry)) then
  return {-13, expiriesKey}
end
if wrongType(redis.pcall('XADD', eventsKey, '*', 'e', event)) then
  redis.call('ZREM', expiriesKey, expiry)
  return {-13, eventsKey}
end
redis.call('HSET', skuKey, 'available', available - quantity, 'seq', seq)
redis.call('HINCRBY', usersKey, userId, quantity)
redis.call('HSET', orderKey, 'user', userId, 'sku', skuId, 'quantity', quantity,
  'status', 'reserved', 'createdAt', now, 'expiresAt', expiresAt, 'idemKey', idemKey)
return {1, 'reserved', quantity, now, expiresAt, userId, available - quantity}
