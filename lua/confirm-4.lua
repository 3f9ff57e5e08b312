--[[
  Confirms a reserved order (payment done) before its expiry; the units stay held, and
  the order is kept in Redis for the retention window (cancellable meanwhile), after which
  PostgreSQL alone remembers it. Confirming a confirmed order changes nothing. Refused
  while the SKU is paused (a repair is reloading it).

  Input:
    KEYS[1] sku state hash   KEYS[2] order (lua/includes/order.lua)   KEYS[3] expiry index (zset)
    KEYS[4] partition event stream
    ARGV[1] sku id   ARGV[2] order id   ARGV[3] user id ('' when an admin confirms)
    ARGV[4] retention in seconds of a confirmed order in Redis
  Output:
    {1, status, quantity, createdAt, expiresAt, user}   confirmed now
    {2, status, quantity, createdAt, expiresAt, user}   already confirmed
    {-1}  SKU state missing
    {-6}  paused
    {-7}  order not found (or owned by another user)
    {-10} reservation expired (status expired, or reserved and past its expiry)
    {-11, status}  order not confirmable (cancelled)
    {-13, key}  a key holds the wrong type: refused before any write
]]
local skuKey = KEYS[1]
local orderKey = KEYS[2]
local expiriesKey = KEYS[3]
local eventsKey = KEYS[4]

local skuId = ARGV[1]
local orderId = ARGV[2]
local userId = ARGV[3]
local retention = tonumber(ARGV[4])

--- @include "nowMs"
--- @include "checkTypes"
--- @include "refuseChange"
--- @include "appendEvent"
--- @include "order"

local order = readOrder(orderKey)
if order == false then
  return {-13, orderKey}
end
if not order or order[2] ~= skuId or (userId ~= '' and order[1] ~= userId) then
  return {-7}
end
local owner = order[1]
local quantity = tonumber(order[3])
local status = order[4]
local createdAt = tonumber(order[5])
local expiresAt = tonumber(order[6])

if status == 'confirmed' then
  return {2, status, quantity, createdAt, expiresAt, owner}
end
if status == 'expired' then
  return {-10}
end
if status ~= 'reserved' then
  return {-11, status}
end
local now = nowMs()
if now >= expiresAt then
  return {-10}
end
local refused = refuseChange(skuKey, skuKey, 'hash', expiriesKey, 'zset', eventsKey, 'stream')
if refused then
  return refused
end

-- Writes.
setOrderStatus(orderKey, order, 'confirmed')
redis.call('EXPIRE', orderKey, retention)
redis.call('ZREM', expiriesKey, skuId .. ':' .. orderId)
appendEvent(skuKey, eventsKey, {
  type = 'order.confirmed', sku = skuId, delta = 0, at = now,
  orderId = orderId, userId = owner, quantity = quantity, status = 'confirmed',
})
return {1, 'confirmed', quantity, createdAt, expiresAt, owner}
