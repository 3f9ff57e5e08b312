--[[
  Adds units to a SKU (admin): available and total supplied grow together.

  Input:
    KEYS[1] sku state hash   KEYS[2] partition event stream
    ARGV[1] sku id   ARGV[2] quantity (> 0)   ARGV[3] reason
  Output:
    {1, available, supplied, seq}
    {-1}  SKU state missing
    {-13, key}  a key holds the wrong type: refused before any write
]]
local skuKey = KEYS[1]
local eventsKey = KEYS[2]

local skuId = ARGV[1]
local quantity = tonumber(ARGV[2])
local reason = ARGV[3]

--- @include "nowMs"
--- @include "checkTypes"
--- @include "appendEvent"

if redis.call('EXISTS', skuKey) == 0 then
  return {-1}
end
local badKey = checkTypes(skuKey, 'hash', eventsKey, 'stream')
if badKey then
  return {-13, badKey}
end

-- Writes.
redis.call('HINCRBY', skuKey, 'available', quantity)
redis.call('HINCRBY', skuKey, 'supplied', quantity)
local seq = appendEvent(skuKey, eventsKey, {
  type = 'sku.restocked', sku = skuId, delta = quantity, at = nowMs(), quantity = quantity, reason = reason,
})
local state = redis.call('HMGET', skuKey, 'available', 'supplied')
return {1, tonumber(state[1]), tonumber(state[2]), seq}
