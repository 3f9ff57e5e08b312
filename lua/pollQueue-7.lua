--[[
  A buyer asks where their waiting-room ticket stands. Only the ticket's own buyer gets an
  answer (anyone else hears it does not exist). Rate-limited per buyer like joins (the
  same key): a limited poll writes nothing. Reads only, besides the rate limit.

  Input:
    KEYS[1..7] as joinQueue-7.lua
    ARGV[1] buyer   ARGV[2] ticket
    ARGV[3] the deployment's buyer rate per second   ARGV[4] its burst (a SKU's own wins)
  Output:
    {1, ticket, status, position, admittedUntil, now, startsAt, admitRate, observedRate}
        status waiting, admitted, closed or expired (see queueTicket.lua); position,
        admittedUntil, admitRate and observedRate may be nil
    {-1}           SKU state missing
    {-19, waitMs}  over the buyer's rate limit: nothing written
    {-31}          the SKU has no waiting room (now)
    {-34}          no such ticket for this buyer and SKU
]]
local skuKey = KEYS[1]
local waitingKey = KEYS[2]
local admittedKey = KEYS[3]
local ticketsKey = KEYS[4]
local stateKey = KEYS[6]
local rateKey = KEYS[7]

local buyer = ARGV[1]
local ticket = ARGV[2]

--- @include "gcra"
--- @include "queueTicket"

local sku = redis.call('HMGET', skuKey, 'available', 'queue', 'startsAt', 'endsAt', 'buyerRate',
  'buyerBurst', 'admitRate')
if not sku[1] then
  return {-1}
end
local now, nowUs = queueClock()
local wait = gcra(rateKey, nowUs, tonumber(sku[5] or ARGV[3]), tonumber(sku[6] or ARGV[4]))
if wait > 0 then
  return {-19, wait}
end
if redis.call('HGET', ticketsKey, ticket) ~= buyer then
  return {-34}
end
if sku[2] ~= '1' then
  return {-31}
end
local startsAt = tonumber(sku[3])
local status, position, admittedUntil = queueStatus(waitingKey, admittedKey, ticket, now,
  tonumber(sku[1]), tonumber(sku[4]))
local observedRate = redis.call('HGET', stateKey, 'observedRate') or false
return {1, ticket, status, position, admittedUntil, now, startsAt, sku[7] or false, observedRate}
