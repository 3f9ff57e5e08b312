--[[
  Adds units to a SKU (admin): available and total supplied grow together. Refused while
  the SKU is paused (a repair is reloading it) and past the most units a SKU may ever be
  supplied, so no event can carry a total PostgreSQL cannot store.

  Input:
    KEYS[1] sku state hash   KEYS[2] partition event stream
    ARGV[1] sku id   ARGV[2] quantity (> 0)   ARGV[3] reason   ARGV[4] supply limit
  Output:
    {1, available, supplied, seq}
    {-1}  SKU state missing
    {-6}  paused
    {-14, supplied}  the restock would pass the supply limit
    {-13, key}  a key holds the wrong type: refused before any write
]]
local skuKey = KEYS[1]
local eventsKey = KEYS[2]

local skuId = ARGV[1]
local quantity = tonumber(ARGV[2])
local reason = ARGV[3]
local supplyLimit = tonumber(ARGV[4])

--- @include "nowMs"
--- @include "checkTypes"
--- @include "appendEvent"

local badKey = checkTypes(skuKey, 'hash', eventsKey, 'stream')
if badKey then
  return {-13, badKey}
end
local state = redis.call('HMGET', skuKey, 'available', 'supplied', 'paused')
if not state[1] then
  return {-1}
end
if state[3] == '1' then
  return {-6}
end
local supplied = tonumber(state[2])
if supplied + quantity > supplyLimit then
  return {-14, supplied}
end

-- Writes.
local available = redis.call('HINCRBY', skuKey, 'available', quantity)
supplied = redis.call('HINCRBY', skuKey, 'supplied', quantity)
local seq = appendEvent(skuKey, eventsKey, {
  type = 'sku.restocked', sku = skuId, delta = quantity, at = nowMs(), quantity = quantity, reason = reason,
})
return {1, available, supplied, seq}
