--[[
  Ends a live order and puts its units back, exactly once (see release-5.lua and
  expire-n.lua, its two callers). Needs checkTypes, refuseChange, appendEvent and order.
  now: the caller's nowMs(); sharedChecked: the caller has checked the types of the
  partition's expiry index and event stream (expire-n, once per batch).
  Output: the reply layout of release-5.lua.
]]
local function release(skuKey, usersKey, orderKey, expiriesKey, eventsKey, skuId, orderId, mode,
    userId, retention, now, sharedChecked)
  local member = skuId .. ':' .. orderId
  local order = readOrder(orderKey)
  if order == false then
    return {-13, orderKey}
  end
  if not order or order[2] ~= skuId or (mode == 'cancel' and order[1] ~= userId) then
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
  local refused
  if sharedChecked then
    refused = refuseChange(skuKey, skuKey, 'hash', usersKey, 'hash')
  else
    refused = refuseChange(skuKey, skuKey, 'hash', usersKey, 'hash', expiriesKey, 'zset', eventsKey, 'stream')
  end
  if refused then
    return refused
  end

  -- Writes.
  redis.call('HINCRBY', skuKey, 'available', quantity)
  local held = redis.call('HINCRBY', usersKey, owner, -quantity)
  if held <= 0 then
    redis.call('HDEL', usersKey, owner)
  end
  setOrderStatus(orderKey, order, target)
  redis.call('EXPIRE', orderKey, retention)
  redis.call('ZREM', expiriesKey, member)
  appendEvent(skuKey, eventsKey, {
    type = 'order.' .. target, sku = skuId, delta = quantity, at = now,
    orderId = orderId, userId = owner, quantity = quantity, status = target,
  })
  return {1, target, quantity, createdAt, expiresAt, owner}
end
