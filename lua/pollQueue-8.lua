--[[
  A buyer asks where their waiting-room ticket stands. Only the ticket's own buyer gets an
  answer (anyone else hears it does not exist). Rate-limited per buyer and per client
  address like joins (the same keys): a limited poll writes nothing. Reads only, besides the rate limit.

  Input:
    KEYS[1..8] as joinQueue-8.lua
    ARGV[1] buyer   ARGV[2] ticket
    ARGV[3] the deployment's buyer rate per second   ARGV[4] its burst (a SKU's own wins)
    ARGV[5] the deployment's client address rate per second ('0': off)   ARGV[6] its burst
  Output:
    {1, ticket, status, position, admittedUntil, now, startsAt, admitRate, observedRate}
        status waiting, admitted, closed or expired (see queueTicket.lua); position,
        admittedUntil, admitRate and observedRate may be nil
    {-1}           SKU state missing
    {-19, waitMs}  over the buyer's or the client address's rate limit: nothing written
    {-13, skuKey}  the SKU hash holds a malformed gate (nothing written)
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
--- @include "gate"
--- @include "nowMs"
--- @include "queueTicket"
--- @include "queueEntry"

local entry, refusal = queueEntry(skuKey, rateKey, ARGV[3], ARGV[4], KEYS[8], ARGV[5], ARGV[6])
if not entry then
  return refusal
end
if redis.call('HGET', ticketsKey, ticket) ~= buyer then
  return {-34}
end
if not entry.needsAdmission then
  return {-31}
end
local status, position, admittedUntil = queueStatus(waitingKey, admittedKey, ticket, entry.now,
  entry.available, entry.endsAt)
local observedRate = redis.call('HGET', stateKey, 'observedRate') or false
return {1, ticket, status, position, admittedUntil, entry.now, entry.startsAt, entry.admitRate,
  observedRate}
