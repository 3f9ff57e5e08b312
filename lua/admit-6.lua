--[[
  One admission pass of a SKU's waiting room (the admitter, src/admission/admitter.ts,
  calls it a few times a second): admits the next tickets in line at the SKU's pace, from
  the sale's opening, while units are left and the sale runs. The pace is a rate (tickets
  per second, as credit that accrues with time, at most a second's worth banked), or a cap
  on admissions outstanding (admitted and not yet lapsed) per unit left, or both (the
  smaller wins). The state of the pace lives in Redis, so two admitters racing share one
  credit instead of doubling it. Also forgets tickets whose admission lapsed long ago.

  Input:
    KEYS[1] sku state hash          KEYS[2] waiting tickets (zset)
    KEYS[3] admitted tickets (zset) KEYS[4] ticket -> buyer (hash)
    KEYS[5] buyer -> ticket (hash)  KEYS[6] admission state (hash)
    ARGV[1] the most tickets this call admits
    ARGV[2] ms a lapsed admission is remembered (its poll answers expired), then forgotten
    ARGV[3] ms the queue's data is kept after the last activity when the sale has no end
    ARGV[4] ms it is kept after the sale's end
  Output:
    {admitted, forgotten}
    {-1}  SKU state missing
]]
local skuKey = KEYS[1]
local waitingKey = KEYS[2]
local admittedKey = KEYS[3]
local ticketsKey = KEYS[4]
local buyersKey = KEYS[5]
local stateKey = KEYS[6]

local maxAdmits = tonumber(ARGV[1])
local rememberLapsedMs = tonumber(ARGV[2])

--- @include "gate"
--- @include "nowMs"
--- @include "queueTicket"

local sku = redis.call('HMGET', skuKey, 'available', 'gate', 'startsAt', 'endsAt', 'admitRate',
  'admitPerUnit', 'admitTtl')
if not sku[1] then
  return {-1}
end
local now = nowMsAndUs()

-- Lapsed admissions past their memory: a bounded number per pass.
local forgotten = 0
local lapsed = redis.call('ZRANGEBYSCORE', admittedKey, '-inf', string.format('%d', now - rememberLapsedMs),
  'LIMIT', 0, 100)
for _, ticket in ipairs(lapsed) do
  local buyer = redis.call('HGET', ticketsKey, ticket)
  redis.call('HDEL', ticketsKey, ticket)
  if buyer and redis.call('HGET', buyersKey, buyer) == ticket then
    redis.call('HDEL', buyersKey, buyer)
  end
  redis.call('ZREM', admittedKey, ticket)
  forgotten = forgotten + 1
end

local available = tonumber(sku[1])
local startsAt = tonumber(sku[3])
local endsAt = tonumber(sku[4])
if not gateOf(sku[2]) or available <= 0 or (startsAt > 0 and now < startsAt)
    or (endsAt > 0 and now >= endsAt) then
  return {0, forgotten}
end
local waiting = redis.call('ZCARD', waitingKey)
if waiting == 0 then
  return {0, forgotten}
end

local n = math.min(waiting, maxAdmits)
local rate = tonumber(sku[5] or '0')
local state = redis.call('HMGET', stateKey, 'lastAt', 'credit', 'windowAt', 'windowCount')
local credit = 0
if rate > 0 then
  -- Credit accrues from the last admission, never from before the opening, and at most a
  -- second's worth (at least one ticket) is banked: a stalled admitter does not flood.
  local from = tonumber(state[1] or '0')
  if from == 0 then
    from = now - 1000
  end
  if from < startsAt then
    from = startsAt
  end
  credit = math.min(math.max(rate, 1), tonumber(state[2] or '0') + (now - from) * rate / 1000)
  n = math.min(n, math.floor(credit + 1e-9))
end
local perUnit = tonumber(sku[6] or '0')
if perUnit > 0 then
  local outstanding = redis.call('ZCOUNT', admittedKey, '(' .. string.format('%d', now), '+inf')
  n = math.min(n, math.ceil(perUnit * available - 1e-9) - outstanding)
end
if n <= 0 then
  return {0, forgotten}
end

-- Writes.
local untilText = string.format('%d', now + tonumber(sku[7]) * 1000)
local popped = redis.call('ZPOPMIN', waitingKey, n)
local adds = {}
for i = 1, #popped, 2 do
  adds[#adds + 1] = untilText
  adds[#adds + 1] = popped[i]
end
redis.call('ZADD', admittedKey, unpack(adds))
local admitted = #popped / 2

-- The observed pace, over windows of at least 5 s: the wait estimate of a SKU paced by
-- units left (no fixed rate) comes from it.
local windowAt = tonumber(state[3] or '0')
local windowCount = tonumber(state[4] or '0') + admitted
if windowAt == 0 then
  windowAt = now
elseif now - windowAt >= 5000 then
  redis.call('HSET', stateKey, 'observedRate', string.format('%.3f', windowCount * 1000 / (now - windowAt)))
  windowAt = now
  windowCount = 0
end
redis.call('HSET', stateKey, 'lastAt', string.format('%d', now),
  'credit', string.format('%.6f', math.max(0, credit - admitted)),
  'windowAt', string.format('%d', windowAt), 'windowCount', string.format('%d', windowCount))
queueExpireAt({waitingKey, admittedKey, ticketsKey, buyersKey, stateKey},
  queueDeadline(now, endsAt, tonumber(ARGV[3]), tonumber(ARGV[4])))
return {admitted, forgotten}
