--[[
  A buyer joins a SKU's waiting room. One ticket per buyer: joining again answers the
  same ticket while it waits or is admitted; once its admission lapsed, the buyer gets a
  new ticket at the back of the line. Before the sale opens every ticket draws a random
  place ahead of all later ones (score in [-1, 0) from the API's random number: Lua's
  math.random is seeded alike on every Redis), so arriving early beats arriving late but
  not the other early buyers; from the opening on, places go in arrival order (score =
  the join's µs). Rate-limited per buyer and per client address (GCRA): a limited join
  writes nothing.

  Input:
    KEYS[1] sku state hash          KEYS[2] waiting tickets (zset)
    KEYS[3] admitted tickets (zset) KEYS[4] ticket -> buyer (hash)
    KEYS[5] buyer -> ticket (hash)  KEYS[6] admission state (hash)
    KEYS[7] the buyer's queue rate-limit key
    KEYS[8] the client address's queue rate-limit key (never touched while no limit is on)
    ARGV[1] buyer   ARGV[2] a fresh ticket id   ARGV[3] a random number in [0, 1)
    ARGV[4] '1' when the API verified the buyer's Qualification-Token for this SKU
    ARGV[5] the deployment's buyer rate per second   ARGV[6] its burst (a SKU's own wins)
    ARGV[7] ms the queue's data is kept after the last join when the sale has no end
    ARGV[8] ms it is kept after the sale's end
    ARGV[9] the deployment's client address rate per second ('0': off)   ARGV[10] its burst
            (a SKU's own wins)
    ARGV[11] a fresh random epoch, kept when the SKU has none yet
  Output:
    {1, ticket, status, position, admittedUntil, now, startsAt, admitRate, observedRate,
     place, epoch}
        a new ticket (status waiting); position, admittedUntil, admitRate and
        observedRate may be nil. place is the ticket's score in the line and epoch the
        SKU's waiting-room epoch: a random value in the SKU's hash, set by the first join
        and kept by repairs, so it changes only when Redis loses the SKU's data (the rebuild
        writes a hash without it). The API signs both into the ticket it hands out, so that
        a poll can put the ticket back in its place once Redis has lost the line
        (pollQueue-8.lua).
    {2, ticket, ...the same}  the buyer's ticket as it stands (waiting or admitted); place
        and epoch nil when unknown (an admitted ticket has left the line)
    {-1}           SKU state missing
    {-19, waitMs}  over the buyer's or the client address's rate limit: nothing written
    {-13, skuKey}  the SKU hash holds a malformed gate (nothing written)
    {-31}          the SKU has no waiting room
    {-32}          the SKU requires qualification and none was verified
    {-33}          closed: nothing left to sell, or the sale ended
]]
local skuKey = KEYS[1]
local waitingKey = KEYS[2]
local admittedKey = KEYS[3]
local ticketsKey = KEYS[4]
local buyersKey = KEYS[5]
local stateKey = KEYS[6]
local rateKey = KEYS[7]

local buyer = ARGV[1]
local newTicket = ARGV[2]

--- @include "gcra"
--- @include "gate"
--- @include "nowMs"
--- @include "queueTicket"
--- @include "queueEntry"

local entry, refusal = queueEntry(skuKey, rateKey, ARGV[5], ARGV[6], KEYS[8], ARGV[9], ARGV[10])
if not entry then
  return refusal
end
if not entry.needsAdmission then
  return {-31}
end
if entry.needsQualification and ARGV[4] ~= '1' then
  return {-32}
end
local now, nowUs = entry.now, entry.nowUs
local available, startsAt, endsAt = entry.available, entry.startsAt, entry.endsAt
if available <= 0 or (endsAt > 0 and now >= endsAt) then
  return {-33}
end
local observedRate = redis.call('HGET', stateKey, 'observedRate') or false
local epoch = entry.epoch
local admitRate = entry.admitRate

local held = redis.call('HGET', buyersKey, buyer)
if held then
  local status, position, admittedUntil = queueStatus(waitingKey, admittedKey, held, now, available,
    endsAt)
  if status ~= 'expired' then
    return {2, held, status, position, admittedUntil, now, startsAt, admitRate, observedRate,
      redis.call('ZSCORE', waitingKey, held) or false, epoch or false}
  end
  -- Writes: the lapsed ticket gives way to a new one.
  redis.call('HDEL', ticketsKey, held)
  redis.call('ZREM', admittedKey, held)
end

-- Writes.
local place
if startsAt > 0 and now < startsAt then
  place = string.format('%.17g', tonumber(ARGV[3]) - 1)
else
  place = string.format('%d', nowUs)
end
queueSeat({waitingKey, admittedKey, ticketsKey, buyersKey, stateKey}, newTicket, buyer, place,
  queueDeadline(now, endsAt, tonumber(ARGV[7]), tonumber(ARGV[8])))
if not epoch then
  epoch = ARGV[11]
  redis.call('HSET', skuKey, 'queueEpoch', epoch)
end
local rank = redis.call('ZRANK', waitingKey, newTicket)
return {1, newTicket, 'waiting', rank + 1, false, now, startsAt, admitRate, observedRate, place, epoch}
