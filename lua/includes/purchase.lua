--[[
  The purchase, shared by purchase-8.lua and claimAndPurchase-9.lua (see their headers for
  input and output): KEYS[1..8] and ARGV[1..8] are the same in both. Expects the locals
  claimKey and claimTtl (both nil when the caller has made the claim itself), and
  claimName (the claim key's name, a field of KEYS[6]).
  Every key and argument costs the call about 1,300 instructions (parsed, made an object,
  pushed into Lua, stored in KEYS or ARGV): nothing is passed that the script can derive.
]]
local skuKey = KEYS[1]
local usersKey = KEYS[2]
local orderKey = KEYS[3]
local expiriesKey = KEYS[4]
local eventsKey = KEYS[5]
local restoredKey = KEYS[6]

local skuId = ARGV[1]
local userId = ARGV[2]
-- The caller's validated whole number. `x + 0` rather than tonumber(x) for every decimal
-- this script trusts (the caller's, its own hash's): tonumber converts a string twice
-- (lua_isnumber, then lua_tonumber, each a strtod), which cost more than some commands.
local quantity = ARGV[3] + 0
local orderId = ARGV[4]
local idemKey = ARGV[5]
local passes = ARGV[7]
local traceparent = ARGV[8]

-- No function is defined on the common path of a new purchase: Lua makes a new closure
-- each time a script runs a function definition, and the allocations and the garbage they
-- leave cost more than any one command here. Helpers used only off that path are included
-- inside the branch that needs them (an include is inlined where it stands).

-- A key of the wrong type must refuse the purchase before any write (Redis does not undo
-- a script's earlier writes when a later one fails). No TYPE calls: each key is proven by
-- the first command that touches it, through redis.pcall, whose error reply is the only
-- table among the replies of GET, SET, HGET, ZADD and XADD (HMGET's is told by its `err`
-- field); answered as -13 instead of raised. Every key that is only written is written
-- first, so a refusal leaves nothing behind. Only WRONGTYPE is -13: a Redis that refuses
-- writes (OOM at its maxmemory, READONLY as a replica, MISCONF when it cannot persist)
-- refuses a script's first write, and only its first (after one, Redis lets the script
-- finish). With a rate limit on, that is the limit's SET, a redis.call whose error Redis
-- raises with its code in front (Redis 7 does); otherwise the claim or the expiry entry,
-- whose error is answered as itself. Either way the API sees the code (Redis is
-- unavailable, not wrong), and nothing was written.

-- Checks: nothing of the SKU's is written until every one has passed.
local sku = redis.call('HMGET', skuKey, 'available', 'limit', 'startsAt', 'endsAt', 'ttl', 'paused',
  'claimsRestoredUntil', 'seq', 'supplied', 'gate')
if not sku[1] then
  -- A key bound to another body is refused first, whether or not the SKU exists, as on
  -- the two-call path (its caller claims before this script). Only read: nothing is
  -- claimed for a SKU whose state is missing.
  if claimKey then
    local claim = redis.pcall('GET', claimKey)
--- @include "claimedOrder"
    if type(claim) == 'string' and not claimedOrderOf(claim) then
      return {-5}
    end
  end
  return {-1}
end
-- The Redis server's clock (one clock for every API instance), in milliseconds as a
-- number and as a decimal string built without formatting a number (Lua's number-to-string
-- conversion goes through printf's floating-point path): seconds, then the first three
-- digits of the zero-padded microseconds (rate limits, when one is on, read all six).
-- Inline rather than a function of an include: each function a script defines is an
-- allocation on every call.
local clock = redis.call('TIME')
local clockUs = clock[2]
if #clockUs < 6 then
  clockUs = string.rep('0', 6 - #clockUs) .. clockUs
end
local nowText = clock[1] .. string.sub(clockUs, 1, 3)
local now = nowText + 0
local needsAdmission, needsQualification = false, false
local skuBuyerRate, skuBuyerBurst, skuClientRate, skuClientBurst = nil, nil, nil, nil
if sku[10] then
--- @include "gate"
  needsAdmission, needsQualification, skuBuyerRate, skuBuyerBurst, skuClientRate, skuClientBurst =
    gateOf(sku[10])
  if needsAdmission == nil then
    return {-13, skuKey}
  end
end

-- Rate limits, before anything is written: over either, the answer is the wait and the
-- only trace is none (a limited request records nothing). The SKU's own buyer and client
-- limits, when it has them, replace the deployment's. ARGV[6] is '-' when the caller's
-- first call for this request counted it already (no limit applies), else the
-- deployment's limits.
local limits = ARGV[6]
if limits ~= '-' and (limits ~= '' or skuBuyerRate or skuClientRate) then
  local buyerRate, buyerBurst, clientRate, clientBurst = 0, 0, 0, 0
  if limits ~= '' then
    buyerRate, buyerBurst, clientRate, clientBurst = string.match(limits, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)$')
    buyerRate, buyerBurst = buyerRate + 0, buyerBurst + 0
    clientRate, clientBurst = clientRate + 0, clientBurst + 0
  end
  if skuBuyerRate then
    buyerRate, buyerBurst = skuBuyerRate + 0, skuBuyerBurst + 0
  end
  -- A client key ending in ':-' is the placeholder of a request whose address is unknown
  -- (NO_CLIENT_ADDRESS in src/shared/keys.ts): no client limit for it, the deployment's or
  -- the SKU's. The one sign of an unknown address: the caller passes its limits as ever.
  if string.sub(KEYS[8], -2) == ':-' then
    clientRate = 0
  elseif skuClientRate then
    clientRate, clientBurst = skuClientRate + 0, skuClientBurst + 0
  end
  local nowUs = (clock[1] .. clockUs) + 0
--- @include "gcra"
  local buyerWait, buyerTat = gcraPeek(KEYS[7], nowUs, buyerRate, buyerBurst)
  local clientWait, clientTat = gcraPeek(KEYS[8], nowUs, clientRate, clientBurst)
  if buyerWait > 0 or clientWait > 0 then
    return {-19, math.max(buyerWait, clientWait)}
  end
  gcraTake(KEYS[7], nowUs, buyerTat)
  gcraTake(KEYS[8], nowUs, clientTat)
end

-- The Idempotency-Key claim, when this call makes it (claimAndPurchase-9.lua): the key binds
-- to this SKU, quantity and order id, or to those of its first use, whose order id this
-- call continues with (a retry replays, another body is refused).
local claimedNow = false
if claimKey then
  -- The layout of claimValue in src/shared/keys.ts: sku|quantity|orderId.
  local claim = redis.pcall('SET', claimKey, skuId .. '|' .. ARGV[3] .. '|' .. orderId, 'EX', claimTtl,
    'NX', 'GET')
  if type(claim) == 'table' then
    if string.sub(claim.err, 1, 9) ~= 'WRONGTYPE' then
      return claim
    end
    return {-13, claimKey}
  end
  if claim then
--- @include "claimedOrder"
    local claimedOrder = claimedOrderOf(claim)
    if not claimedOrder then
      return {-5}
    end
    -- The same SKU, so the same partition: only the id at the end of the key differs.
    orderKey = string.sub(orderKey, 1, #orderKey - #orderId) .. claimedOrder
    orderId = claimedOrder
  else
    claimedNow = true
  end
end

-- An order id claimed in this very call is fresh (random, and no other call can hold it
-- yet), so it names no order: only an id claimed earlier may have one to replay. Not so
-- when the caller claimed: another request with the same key may have run its script
-- between that claim and this one.
if not claimedNow then
--- @include "order"
  local existing = readOrder(orderKey)
  if existing == false then
    return {-13, orderKey}
  end
  if existing then
    if existing[1] ~= userId or existing[2] ~= skuId or tonumber(existing[3]) ~= quantity then
      return {-5}
    end
    return {2, existing[4], tonumber(existing[3]), tonumber(existing[5]), tonumber(existing[6]), existing[1],
      false, orderId}
  end
end

-- Only for a while after a rebuild (the field is absent otherwise): the caller may have
-- claimed its key before the rebuild restored the claim to the order PostgreSQL has. Each
-- restored claim counts only while it lives: the memory of them all lasts as long as the
-- youngest, and a key whose claim ran out is a new purchase (seed 20261217 of the soak).
if sku[7] and sku[7] + 0 > now then
  local restored = redis.call('HGET', restoredKey, claimName)
  if restored then
    local restoredOrder, livesUntil = string.match(restored, '^([^|]+)|(%d+)$')
    if restoredOrder and livesUntil + 0 > now and restoredOrder ~= orderId then
      return {-16, restoredOrder}
    end
  end
end

-- The rest of the checks, each a refusal or nothing. A refusal takes back the claim this
-- call made: a refused attempt leaves nothing in Redis (a retry with the key decides
-- again; nothing needs replaying). Atomic with the claim, so no other request with the
-- key can have bought under it meanwhile.
local refusal = nil
local available = sku[1] + 0
-- Passes the SKU asks for, checked by the caller (signed tokens) and vouched for here.
-- After the replay above: a retry of a purchase that was made replays even once its
-- admission has lapsed.
if needsQualification and not string.find(passes, 'q', 1, true) then
  refusal = {-18}
elseif needsAdmission and not string.find(passes, 'a', 1, true) then
  refusal = {-17}
elseif sku[6] == '1' then
  refusal = {-6}
-- A window bound of '0' is open: no conversion for it.
elseif (sku[3] ~= '0' and now < sku[3] + 0) or (sku[4] ~= '0' and now >= sku[4] + 0) then
  refusal = {-2}
else
  local held = redis.pcall('HGET', usersKey, userId)
  -- A held count that is not a whole number is a corrupt hash: refused before any write
  -- (HINCRBY below would fail only after the stock and the stream had changed).
  if type(held) == 'table' or (held and not string.match(held, '^%d+$')) then
    refusal = {-13, usersKey}
  else
    held = held and held + 0 or 0
    if held + quantity > sku[2] + 0 then
      refusal = {-3, held}
    elseif available < quantity then
      refusal = {-4, available}
    end
  end
end
-- The event and the two writes that can still be refused, when no check refused.
local quantityText, availableAfter, seq, expiresAt, expiresAtText = ARGV[3]
if not refusal then
  -- The event, as JSON without cjson (building and encoding a table took a fifth of the
  -- script's time), concatenated from strings: the values the script holds as text go in
  -- as they are (the quantity as sent, the supply as stored, the clock), and the three new
  -- numbers are formatted once each as integers, then reused by the writes below. A Lua
  -- number handed to redis.call or to `..` is converted with printf's floating-point
  -- path, which cost more than any command here. Every string in the event matches
  -- ID_PATTERN, ORDER_ID_PATTERN or IDEMPOTENCY_KEY_PATTERN (src/shared/keys.ts), none of
  -- which admits a character JSON escapes (test/unit/keys.test.ts keeps it so), and the
  -- quantity is the caller's validated whole number. Built before any write: a malformed
  -- SKU hash fails here, with nothing written.
  availableAfter = string.format('%d', available - quantity)
  seq = string.format('%d', (sku[8] or 0) + 1)
  expiresAt = now + sku[5] * 1000
  expiresAtText = string.format('%d', expiresAt)
  local event = '{"v":1,"type":"order.reserved","sku":"' .. skuId .. '","seq":' .. seq ..
    ',"delta":-' .. quantityText .. ',"stockAfter":' .. availableAfter .. ',"suppliedAfter":' ..
    sku[9] .. ',"at":' .. nowText .. ',"orderId":"' .. orderId .. '","userId":"' .. userId ..
    '","quantity":' .. quantityText .. ',"status":"reserved","idempotencyKey":"' .. idemKey ..
    '","createdAt":' .. nowText .. ',"expiresAt":' .. expiresAtText .. '}'
  -- With tracing on, the traceparent of the caller's span rides in the event (the relay and
  -- the writer continue the trace from it). Checked here too, so the event stays valid JSON.
  if #traceparent == 55 and string.match(traceparent, '^00%-%x+%-%x+%-%x%x$') then
    event = string.sub(event, 1, -2) .. ',"traceparent":"' .. traceparent .. '"}'
  end

  -- Writes. The expiry index and the stream first: they are the keys not read above. A
  -- refused stream takes back the expiry entry, which leaves the index as it was.
  local expiry = skuId .. ':' .. orderId
  local indexed = redis.pcall('ZADD', expiriesKey, expiresAtText, expiry)
  if type(indexed) == 'table' then
    refusal = string.sub(indexed.err, 1, 9) == 'WRONGTYPE' and {-13, expiriesKey} or indexed
  elseif type(redis.pcall('XADD', eventsKey, '*', 'e', event)) == 'table' then
    redis.call('ZREM', expiriesKey, expiry)
    refusal = {-13, eventsKey}
  end
end
if refusal then
  if claimedNow then
    redis.call('DEL', claimKey)
  end
  return refusal
end

redis.call('HSET', skuKey, 'available', availableAfter, 'seq', seq)
redis.call('HINCRBY', usersKey, userId, quantityText)
-- The order's Idempotency-Key is in its event (PostgreSQL keeps it) and its claim, not here:
-- nothing reads it from the order, and two more arguments cost every purchase.
-- orderText of lua/includes/order.lua, inline: no function on the common path.
redis.call('SET', orderKey, userId .. '|' .. skuId .. '|' .. quantityText .. '|reserved|' .. nowText .. '|' ..
  expiresAtText)
-- A claim an earlier, refused call made (and took back) is gone; one a concurrent call made
-- and this call continued may have been shortened by nothing, but restate its full time to
-- live anyway: the order now exists, and its key must outlive nothing less.
if claimKey and not claimedNow then
  redis.call('EXPIRE', claimKey, claimTtl)
end
return {1, 'reserved', quantity, now, expiresAt, userId, available - quantity, orderId}
