--[[
  Pauses or resumes a SKU's sales (repair). A change of the flag is a state change, so
  it bumps the sequence and appends one event; setting the flag it already has does not.

  Input:
    KEYS[1] sku state hash   KEYS[2] partition event stream
    ARGV[1] sku id   ARGV[2] paused: '1' or '0'
  Output:
    {1, seq}  changed
    {2}       already so
    {-1}      SKU state missing
    {-13, key} a key holds the wrong type: refused before any write
]]
local skuKey = KEYS[1]
local eventsKey = KEYS[2]

local skuId = ARGV[1]
local paused = ARGV[2]

--- @include "nowMs"
--- @include "checkTypes"
--- @include "appendEvent"

local current = redis.call('HGET', skuKey, 'paused')
if not current then
  return {-1}
end
if current == paused then
  return {2}
end
local badKey = checkTypes(eventsKey, 'stream')
if badKey then
  return {-13, badKey}
end

-- Writes.
redis.call('HSET', skuKey, 'paused', paused)
local type = 'sku.resumed'
if paused == '1' then
  type = 'sku.paused'
end
return {1, appendEvent(skuKey, eventsKey, { type = type, sku = skuId, delta = 0, at = nowMs() })}
