--[[
  Ends a live order and puts its units back, exactly once: cancel (by its owner, from
  reserved or confirmed) or expire (by the sweeper, reserved and past its expiry).
  A second call finds the order already ended and changes nothing. Refused while the SKU
  is paused (a repair is reloading it). An expiry index entry whose order is gone or no
  longer reserved is dropped from the index (it can only be stale: rebuilds re-add the
  entries of the live reservations and never clear a whole partition's index).

  Input:
    KEYS[1] sku state hash        KEYS[2] per-user held units hash
    KEYS[3] order hash            KEYS[4] expiry index (zset)
    KEYS[5] partition event stream
    ARGV[1] sku id   ARGV[2] order id   ARGV[3] mode: 'cancel' or 'expire'
    ARGV[4] user id (cancel: must own the order; ignored for expire)
    ARGV[5] retention in seconds of an ended order
  Output:
    {1, status, quantity, createdAt, expiresAt, user}   released now
    {2, status, quantity, createdAt, expiresAt, user}   already ended that way: nothing changed
    {-1}  SKU state missing
    {-6}  paused
    {-7}  order not found (or owned by another user)
    {-8}  order cannot be released this way (status shown)  {-8, status}
    {-9}  not due yet (expire only)
    {-13, key}  a key holds the wrong type: refused before any write
]]
local skuKey = KEYS[1]
local usersKey = KEYS[2]
local orderKey = KEYS[3]
local expiriesKey = KEYS[4]
local eventsKey = KEYS[5]

local skuId = ARGV[1]
local orderId = ARGV[2]
local mode = ARGV[3]
local userId = ARGV[4]
local retention = tonumber(ARGV[5])

--- @include "nowMs"
--- @include "checkTypes"
--- @include "appendEvent"

local member = skuId .. ':' .. orderId
local order = redis.call('HMGET', orderKey, 'user', 'sku', 'quantity', 'status', 'createdAt', 'expiresAt')
if not order[1] or order[2] ~= skuId or (mode == 'cancel' and order[1] ~= userId) then
  if mode == 'expire' then
    redis.call('ZREM', expiriesKey, member)
  end
  return {-7}
end
local owner = order[1]
local quantity = tonumber(order[3])
local status = order[4]
local createdAt = tonumber(order[5])
local expiresAt = tonumber(order[6])

local target = 'cancelled'
if mode == 'expire' then
  target = 'expired'
end
if status == target then
  if mode == 'expire' then
    redis.call('ZREM', expiriesKey, member)
  end
  return {2, status, quantity, createdAt, expiresAt, owner}
end

local now = nowMs()
if mode == 'cancel' then
  if status ~= 'reserved' and status ~= 'confirmed' then
    return {-8, status}
  end
else
  if status ~= 'reserved' then
    redis.call('ZREM', expiriesKey, member)
    return {-8, status}
  end
  if now < expiresAt then
    return {-9}
  end
end
local paused = redis.call('HGET', skuKey, 'paused')
if not paused then
  return {-1}
end
if paused == '1' then
  return {-6}
end
local badKey = checkTypes(skuKey, 'hash', usersKey, 'hash', expiriesKey, 'zset', eventsKey, 'stream')
if badKey then
  return {-13, badKey}
end

-- Writes.
redis.call('HINCRBY', skuKey, 'available', quantity)
local held = redis.call('HINCRBY', usersKey, owner, -quantity)
if held <= 0 then
  redis.call('HDEL', usersKey, owner)
end
redis.call('HSET', orderKey, 'status', target, 'endedAt', now)
redis.call('EXPIRE', orderKey, retention)
redis.call('ZREM', expiriesKey, member)
appendEvent(skuKey, eventsKey, {
  type = 'order.' .. target, sku = skuId, delta = quantity, at = now,
  orderId = orderId, userId = owner, quantity = quantity, status = target,
})
return {1, target, quantity, createdAt, expiresAt, owner}
