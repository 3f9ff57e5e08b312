--[[
  A buyer asks where their waiting-room ticket stands. Only the ticket's own buyer gets an
  answer (anyone else hears it does not exist). Rate-limited per buyer and per client
  address like joins (the same keys): a limited poll writes nothing. Reads only, besides
  the rate limit and a ticket put back:
  a ticket Redis no longer knows is put back in its place when the API vouches for that
  place (a ticket it signed, see ARGV[7]) and Redis has lost the SKU's data since the
  ticket was handed out (its epoch is not the SKU's, see joinQueue-8.lua): one ticket per
  buyer (marked in the queue's state hash), while the sale runs, and only for a buyer who
  holds no other ticket. So a line lost with Redis's data comes back as its buyers poll.
  A ticket forgotten in the ordinary way (its admission lapsed long ago, or the queue's
  keys expired after a quiet day) has the SKU's epoch and stays gone.

  Input:
    KEYS[1..8] as joinQueue-8.lua
    ARGV[1] buyer   ARGV[2] ticket
    ARGV[3] the deployment's buyer rate per second   ARGV[4] its burst (a SKU's own wins)
    ARGV[5] the deployment's client address rate per second ('0': off)   ARGV[6] its burst
    ARGV[7] the ticket's place and ARGV[8] the queue's epoch when it was handed out, as the
            API verified them from the ticket's signature; '' and '' for an unsigned ticket
    ARGV[9] ms the queue's data is kept after the last join when the sale has no end
    ARGV[10] ms it is kept after the sale's end
  Output:
    {1, ticket, status, position, admittedUntil, now, startsAt, admitRate, observedRate,
     restored}
        status waiting, admitted, closed or expired (see queueTicket.lua); position,
        admittedUntil, admitRate and observedRate may be nil; restored is 1 when this poll
        put the ticket back in a line lost with Redis's data, else nil
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
local buyersKey = KEYS[5]
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
local restored = false
if redis.call('HGET', ticketsKey, ticket) ~= buyer then
  local place, epoch = ARGV[7], ARGV[8]
  local restoredField = 'r:' .. buyer
  if place == '' or not tonumber(place) or not entry.needsAdmission
      or (entry.endsAt > 0 and entry.now >= entry.endsAt)
      or entry.epoch == epoch
      or redis.call('HEXISTS', stateKey, restoredField) == 1
      or redis.call('HEXISTS', buyersKey, buyer) == 1 then
    return {-34}
  end
  -- Writes: the ticket back in its place, its buyer's one, once per buyer. The mark first:
  -- after a loss of data it may create the state hash, which queueSeat then gives its expiry.
  redis.call('HSET', stateKey, restoredField, '1')
  queueSeat({waitingKey, admittedKey, ticketsKey, buyersKey, stateKey}, ticket, buyer, place,
    queueDeadline(entry.now, entry.endsAt, tonumber(ARGV[9]), tonumber(ARGV[10])))
  restored = 1
end
if not entry.needsAdmission then
  return {-31}
end
local status, position, admittedUntil = queueStatus(waitingKey, admittedKey, ticket, entry.now,
  entry.available, entry.endsAt)
local observedRate = redis.call('HGET', stateKey, 'observedRate') or false
return {1, ticket, status, position, admittedUntil, entry.now, entry.startsAt, entry.admitRate,
  observedRate, restored}
