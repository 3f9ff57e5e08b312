--[[
  Loads a SKU's Redis state from PostgreSQL: the SKU hash, the units each user holds, and
  the reservations with their expiries. Touches only this SKU's keys and index entries:
  other SKUs of the partition share the expiry index, so it is never cleared wholesale
  (entries of orders that are no longer reservations are dropped by the release script).
  No event: this copies the durable record, it changes nothing.

  Two modes:
    fresh    (ARGV[10] = 0): refused when a state is present, so a stale copy can never
             overwrite live stock (creation, and rebuild after Redis lost the state).
    replace  (ARGV[10] = 1): repair. Only while the SKU is paused and its sequence is still
             ARGV[11], the one PostgreSQL was seen to have reached: no event can have landed
             since, so the copy is exactly as new as the state it replaces.

  Input (4 + one key per reservation; all share the SKU partition's hash tag):
    KEYS[1] sku state hash   KEYS[2] per-user held units hash   KEYS[3] expiry index (zset)
    KEYS[4] claims restored after a loss (written before this script): while it lives, the
            purchase script consults it, so the SKU records until when
    KEYS[5..] orders (lua/includes/order.lua), in the order of the reservations below
    ARGV[1] sku id   ARGV[2] available   ARGV[3] supplied   ARGV[4] per-user limit
    ARGV[5] startsAt ms (0 = open)   ARGV[6] endsAt ms (0 = open)   ARGV[7] reservation ttl s
    ARGV[8] paused (0/1)   ARGV[9] sequence   ARGV[10] replace (0/1)
    ARGV[11] expected sequence (replace only)
    ARGV[12] A, the number of admission settings (src/inventory/admission-fields.ts)
    ARGV[13 .. 12 + 2A] the settings: field, value ('' = absent, not written)
    ARGV[13 + 2A] the settings' version (0, never changed: not written)
    ARGV[14 + 2A] U, the number of holders
    then the holders, 2U values: userId, units held by the user's live orders
    then the reservations, 5 values each: orderId, userId, quantity, createdAt, expiresAt
  Output:
    {1}   loaded
    {-12} already present (fresh)
    {-15, seq} replace refused: not paused, or the sequence moved
]]
local skuKey = KEYS[1]
local usersKey = KEYS[2]
local expiriesKey = KEYS[3]
local restoredKey = KEYS[4]

--- @include "nowMs"
--- @include "order"

local skuId = ARGV[1]
local replace = ARGV[10] == '1'

if replace then
  local current = redis.call('HMGET', skuKey, 'paused', 'seq')
  if current[1] ~= '1' or current[2] ~= ARGV[11] then
    return {-15, current[2]}
  end
elseif redis.call('EXISTS', skuKey) == 1 then
  return {-12}
end

-- Writes. A repair keeps the waiting room's epoch (joinQueue-8.lua): Redis did not lose
-- the line, so no ticket may take its place back.
local queueEpoch = redis.call('HGET', skuKey, 'queueEpoch')
redis.call('DEL', skuKey, usersKey)
-- The two fields every purchase writes first: a small hash is a list that a write searches
-- from its head.
redis.call('HSET', skuKey, 'available', ARGV[2], 'seq', ARGV[9], 'supplied', ARGV[3], 'limit', ARGV[4],
  'startsAt', ARGV[5], 'endsAt', ARGV[6], 'ttl', ARGV[7], 'paused', ARGV[8])
if queueEpoch then
  redis.call('HSET', skuKey, 'queueEpoch', queueEpoch)
end
local restoredLeft = redis.call('PTTL', restoredKey)
if restoredLeft > 0 then
  redis.call('HSET', skuKey, 'claimsRestoredUntil', nowMs() + restoredLeft)
end
local settings = tonumber(ARGV[12])
for i = 0, settings - 1 do
  local value = ARGV[14 + i * 2]
  if value ~= '' then
    redis.call('HSET', skuKey, ARGV[13 + i * 2], value)
  end
end
local at = 13 + settings * 2
if ARGV[at] ~= '0' then
  redis.call('HSET', skuKey, 'admissionVersion', ARGV[at])
end
local holders = tonumber(ARGV[at + 1])
for i = 0, holders - 1 do
  redis.call('HSET', usersKey, ARGV[at + 2 + i * 2], ARGV[at + 3 + i * 2])
end
local n = 0
local first = at + 2 + holders * 2
while ARGV[first + n * 5] do
  local base = first + n * 5
  local orderId, expiresAt = ARGV[base], ARGV[base + 4]
  -- SET replaces an older engine's hash, and any time to live.
  redis.call('SET', KEYS[5 + n], orderText(ARGV[base + 1], skuId, ARGV[base + 2], 'reserved', ARGV[base + 3],
    expiresAt))
  redis.call('ZADD', expiriesKey, expiresAt, skuId .. ':' .. orderId)
  n = n + 1
end
return {1}
