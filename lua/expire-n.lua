--[[
  Expires many due reservations of one partition in one call (the sweeper, when the unpaid
  reservations of a big sale lapse together): for each, exactly what release-5.lua does in
  'expire' mode, one event per order that expired. Each order is decided on its own; one
  that cannot expire now (not due, SKU paused or missing) keeps its index entry.

  Input (all keys share the partition's hash tag):
    KEYS[1] expiry index (zset)   KEYS[2] partition event stream
    KEYS[3 + 3i], KEYS[4 + 3i], KEYS[5 + 3i]: order i's sku state hash, per-user held
      units hash and order (lua/includes/order.lua) (i from 0)
    ARGV[1] retention in seconds of an ended order
    ARGV[2 + 2i], ARGV[3 + 2i]: order i's sku id and order id
  Output: one release-5.lua code per order, in order.
]]
--- @include "nowMs"
--- @include "checkTypes"
--- @include "refuseChange"
--- @include "appendEvent"
--- @include "order"
--- @include "release"

local retention = tonumber(ARGV[1])
-- Once per batch, not per order: the clock, and the types of the keys every order shares.
local now = nowMs()
local sharedChecked = not checkTypes(KEYS[1], 'zset', KEYS[2], 'stream')
local codes = {}
for i = 0, (#KEYS - 2) / 3 - 1 do
  local reply = release(KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i], KEYS[1], KEYS[2],
    ARGV[2 + 2 * i], ARGV[3 + 2 * i], 'expire', '', retention, now, sharedChecked)
  codes[i + 1] = reply[1]
end
return codes
