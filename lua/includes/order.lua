--[[
  An order's record (orderValue in src/shared/keys.ts): one string,
    '<user>|<sku>|<quantity>|<status>|<createdAt ms>|<expiresAt ms>'
  Orders an older engine wrote are hashes of those six fields; both are read, and a status
  is written back in the layout the order has, so an upgrade needs no migration. The
  purchase script writes a new order inline (no function on its common path).

  readOrder(key) -> {user, sku, quantity, status, createdAt, expiresAt} (strings); nil when
    the key is absent; false when it holds neither layout whole (the caller answers -13).
    The string, and a hash's fields joined as one, must match ORDER_VALUE_PATTERN of
    src/shared/keys.ts: every number a whole number, so no caller's arithmetic can raise.
  setOrderStatus(key, order, status): the order's new status (the caller then sets its
    retention: SET clears a string's time to live).
  orderText(user, sku, quantity, status, createdAt, expiresAt): the string of an order.
]]
local function orderText(user, sku, quantity, status, createdAt, expiresAt)
  return user .. '|' .. sku .. '|' .. quantity .. '|' .. status .. '|' .. createdAt .. '|' .. expiresAt
end

local function readOrder(key)
  local value = redis.pcall('GET', key)
  if type(value) == 'string' then
    local user, sku, quantity, status, createdAt, expiresAt =
      string.match(value, '^([^|]+)|([^|]+)|(%d+)|(%a+)|(%d+)|(%d+)$')
    if not user then
      return false
    end
    return {user, sku, quantity, status, createdAt, expiresAt}
  end
  if not value then
    return nil
  end
  if string.sub(value.err, 1, 9) ~= 'WRONGTYPE' then
    error(value.err)
  end
  local fields = redis.pcall('HMGET', key, 'user', 'sku', 'quantity', 'status', 'createdAt', 'expiresAt')
  if fields.err or not (fields[1] and fields[2] and fields[3] and fields[4] and fields[5] and fields[6]) then
    return false
  end
  -- The string's grammar, field by field: a number that is not one is as malformed here.
  if not string.match(orderText(fields[1], fields[2], fields[3], fields[4], fields[5], fields[6]),
      '^[^|]+|[^|]+|%d+|%a+|%d+|%d+$') then
    return false
  end
  fields.hash = true
  return fields
end

local function setOrderStatus(key, order, status)
  if order.hash then
    redis.call('HSET', key, 'status', status)
  else
    redis.call('SET', key, orderText(order[1], order[2], order[3], status, order[5], order[6]))
  end
end
