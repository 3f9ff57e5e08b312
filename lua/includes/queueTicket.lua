--[[
  Waiting-room helpers shared by joinQueue-8.lua, pollQueue-8.lua and admit-6.lua.

  queueStatus(waitingKey, admittedKey, ticket, now, available, endsAt)
    -> status, position (or false), admittedUntil (or false):
    admitted  its admission lasts past now (position 0), until the sale ends
    waiting   in line (position 1 is next), while units are left and the sale runs
    closed    waiting while nothing is left to sell, or the sale ended
    expired   its admission lapsed (or its place is gone)
  queueExpireAt(keys, deadline): every key of the queue lives until the deadline.
  queueSeat(keys, ticket, buyer, place, deadline): the ticket in line at its place, as its
    buyer's one, and every key of the queue living until the deadline (a join, or a poll
    putting a lost ticket back). keys: {waiting, admitted, tickets, buyers, state}.
  queueDeadline(now, endsAt, idleMs, afterEndMs): until when a queue's data is kept: a
    while after the sale's end, or after the last activity when the sale has no end.
]]
local function queueStatus(waitingKey, admittedKey, ticket, now, available, endsAt)
  local ended = endsAt > 0 and now >= endsAt
  local admittedUntil = redis.call('ZSCORE', admittedKey, ticket)
  if admittedUntil then
    admittedUntil = tonumber(admittedUntil)
    if ended then
      return 'closed', false, admittedUntil
    end
    if admittedUntil > now then
      return 'admitted', 0, admittedUntil
    end
    return 'expired', false, admittedUntil
  end
  local rank = redis.call('ZRANK', waitingKey, ticket)
  if rank then
    if ended or available <= 0 then
      return 'closed', false, false
    end
    return 'waiting', rank + 1, false
  end
  return 'expired', false, false
end

local function queueDeadline(now, endsAt, idleMs, afterEndMs)
  if endsAt > 0 then
    return endsAt + afterEndMs
  end
  return now + idleMs
end

local function queueExpireAt(keys, deadline)
  local at = string.format('%d', deadline)
  for _, key in ipairs(keys) do
    redis.call('PEXPIREAT', key, at)
  end
end

local function queueSeat(keys, ticket, buyer, place, deadline)
  redis.call('ZADD', keys[1], place, ticket)
  redis.call('HSET', keys[3], ticket, buyer)
  redis.call('HSET', keys[4], buyer, ticket)
  queueExpireAt(keys, deadline)
end
