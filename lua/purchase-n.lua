--[[
  Decides a batch of purchases of one SKU, in order, each as if it were alone: checks, then
  deducts stock, counts the user's units, records the order (reserved, with its expiry),
  indexes the expiry and appends one event. What a purchase costs Redis is half the call
  around it (the EVALSHA, the SKU's read and write, the clock): a batch pays that once, so
  the purchases the API has in hand for one SKU at one moment go in one call
  (src/inventory/purchase-batches.ts). A batch of one is the purchase alone.

  The order key doubles as the idempotency record: the caller derives orderId from the
  user's Idempotency-Key claim, so a retry arrives with the same orderId and is replayed.
  On a single node the script makes that claim itself (claim mode): the claim lives in the
  user's hash slot, which may meet the partition's only there. It takes back the claim of a
  refused attempt (a refused attempt leaves nothing: a retry decides again). On a Redis
  Cluster the caller has claimed (a round trip of its own), and a refused attempt keeps its
  claim (taking it back could race a retry of the same key that buys).

  Input:
    KEYS[1] sku state hash   KEYS[2] per-user held units hash   KEYS[3] expiry index (zset)
    KEYS[4] partition event stream
    KEYS[5] claims restored after a loss of Redis's data (claim key -> '<order id>|<ms until
            which the claim lives>')
    then for each purchase: its order, the buyer's rate-limit key for this SKU, the client
    address's (ending in ':-' when the address is unknown: then no client limit applies),
    and in claim mode its Idempotency-Key claim key (SET NX with the claim's value,
    claimValue in src/shared/keys.ts, or read when it exists).
    ARGV[1] sku id
    ARGV[2] the claim's time to live in seconds in claim mode, '' when the caller claimed
    ARGV[3] the deployment's rate limits, '<buyer rate>|<buyer burst>|<client address
            rate>|<its burst>' (purchases per second, a rate of 0 is no limit; the SKU's
            gate overrides either), '' when none is on
    then for each purchase: user id, quantity, order id (in claim mode a fresh one, used
    when the claim is new: an existing claim for the same SKU and quantity continues with
    its own), idempotency key, what the caller vouches for, in any order ('a' an
    Admission-Token it verified, 'q' a Qualification-Token, '-' this request was counted
    against the rate limits by an earlier call, so none applies; '' nothing: one argument,
    each costing the call about a thousand instructions), the W3C traceparent to carry in
    the event ('' when tracing is off), and when the caller claimed, the claim's key name
    (a field of KEYS[5]).
  Output: one reply per purchase, in order (a call of one purchase answers its reply
  alone), each the order layout every order script answers with, plus the order id:
    {1, 'reserved', quantity, createdAt, expiresAt, user, available, orderId}  order created
    {2, status, quantity, createdAt, expiresAt, user, nil, orderId}   replay of the existing order
    {-1}  SKU state missing (rebuild from PostgreSQL; never treated as zero)
    {-2}  sale not open (before startsAt or after endsAt)
    {-3, held}       per-user limit would be exceeded
    {-4, available}  not enough stock
    {-5}  the order id, or the key's claim, belongs to another user, SKU or quantity
    {-6}  sales paused (repair in progress)
    {-13, key}  a key holds the wrong type (or a value no engine writes), or the SKU hash
                a malformed gate: refused before any write of this purchase, and the
                batch's other purchases are decided as ever
    {-16, orderId}  the rebuild restored this key's claim to another order while the
                    caller held a placeholder: replay that order instead of buying again
    {-17}  the SKU sells through its waiting room and the caller is not admitted
    {-18}  the SKU requires qualification and the caller is not qualified
    {-19, ms}  over the buyer's or the client address's rate: retry after ms (nothing written)
  A Redis that refuses writes (OOM at its maxmemory, READONLY as a replica, MISCONF when it
  cannot persist) refuses a script's first write, and only its first (after one, Redis lets
  the script finish): that error is the answer to the whole call, and nothing was written.
]]
local skuKey = KEYS[1]
local usersKey = KEYS[2]
local expiriesKey = KEYS[3]
local eventsKey = KEYS[4]
local restoredKey = KEYS[5]
local skuId = ARGV[1]
local claimTtl = ARGV[2]
local claimMode = claimTtl ~= ''
local deploymentLimits = ARGV[3]
local keysEach = claimMode and 4 or 3
local argsEach = claimMode and 6 or 7
local count = (#ARGV - 3) / argsEach
local replies = {}

-- `x + 0` rather than tonumber(x) for every decimal this script trusts (the caller's, its
-- own hash's): tonumber converts a string twice (lua_isnumber, then lua_tonumber, each a
-- strtod), which costs more than some commands. A Lua number handed to redis.call or to
-- `..` is converted with printf's floating-point path: each new number is formatted once,
-- as an integer, and the text reused.

local sku = redis.call('HMGET', skuKey, 'available', 'limit', 'startsAt', 'endsAt', 'ttl', 'paused',
  'claimsRestoredUntil', 'seq', 'supplied', 'gate')
if not sku[1] then
  -- A key bound to another body is refused first, whether or not the SKU exists, as on
  -- the two-call path (its caller claims before this script). Only read: nothing is
  -- claimed for a SKU whose state is missing.
--- @include "claimedOrder"
  for i = 0, count - 1 do
    local reply = {-1}
    if claimMode then
      local claim = redis.pcall('GET', KEYS[6 + i * keysEach + 3])
      local a = 4 + i * argsEach
      if type(claim) == 'string' and not claimedOrderOf(claim, ARGV[a + 1] + 0) then
        reply = {-5}
      end
    end
    replies[i + 1] = reply
  end
  if count == 1 then
    return replies[1]
  end
  return replies
end

-- The Redis server's clock (one clock for every API instance, one reading for the batch),
-- in milliseconds as a number and as a decimal string built without formatting a number:
-- seconds, then the first three digits of the zero-padded microseconds (rate limits, when
-- one is on, read all six).
local clock = redis.call('TIME')
local clockUs = clock[2]
if #clockUs < 6 then
  clockUs = string.rep('0', 6 - #clockUs) .. clockUs
end
local nowText = clock[1] .. string.sub(clockUs, 1, 3)
local now = nowText + 0
local nowUs = nil

local needsAdmission, needsQualification = false, false
local skuBuyerRate, skuBuyerBurst, skuClientRate, skuClientBurst = nil, nil, nil, nil
if sku[10] then
--- @include "gate"
  needsAdmission, needsQualification, skuBuyerRate, skuBuyerBurst, skuClientRate, skuClientBurst =
    gateOf(sku[10])
end

-- What every purchase of the batch reads of the SKU, converted once. A malformed SKU hash
-- fails here, before anything is written.
local available = sku[1] + 0
local availableText = nil
local seq = (sku[8] or 0) + 0
local seqText = nil
local perUserLimit = sku[2] + 0
local ttlMs = sku[5] * 1000
local paused = sku[6] == '1'
-- A window bound of '0' is open.
local outsideWindow = (sku[3] ~= '0' and now < sku[3] + 0) or (sku[4] ~= '0' and now >= sku[4] + 0)
local restoring = sku[7] and sku[7] + 0 > now
-- The supply goes into each event as stored: proven a number here, not midway.
local _ = sku[9] + 0

-- Rate limits: the deployment's, each replaced by the SKU's own when it has one.
local buyerRate, buyerBurst, clientRate, clientBurst = 0, 0, 0, 0
if deploymentLimits ~= '' then
  buyerRate, buyerBurst, clientRate, clientBurst =
    string.match(deploymentLimits, '^([^|]+)|([^|]+)|([^|]+)|([^|]+)$')
  buyerRate, buyerBurst = buyerRate + 0, buyerBurst + 0
  clientRate, clientBurst = clientRate + 0, clientBurst + 0
end
if skuBuyerRate then
  buyerRate, buyerBurst = skuBuyerRate + 0, skuBuyerBurst + 0
end
if skuClientRate then
  clientRate, clientBurst = skuClientRate + 0, skuClientBurst + 0
end
local limited = buyerRate > 0 or clientRate > 0
-- Defined only when a limit is on, and the order's reader only when a purchase needs it:
-- each function a script defines is an allocation on every call.
local peekRate, takeRate = nil, nil
if limited then
--- @include "gcra"
  peekRate, takeRate = gcraPeekChecked, gcraTake
end
local readOrderAt = nil

-- Each purchase in turn, decided as if alone: its reply, then the next. No function per
-- purchase (a closure over this chunk's locals costs an allocation for each of them):
-- the body runs once inside `repeat ... until true`, and a refusal is `break`.
-- Nothing of a purchase is written until every check of its own has passed, and nothing
-- in its checks can raise once an earlier purchase has written: a key of the wrong type
-- refuses it (-13), so the batch's other purchases go on. No TYPE calls: each key is proven
-- by the first command that touches it, through redis.pcall, whose error reply is the only
-- table among the replies of GET, SET, HGET, ZADD and XADD. A write Redis refuses (OOM,
-- READONLY, MISCONF) can only be this call's first, so nothing was written when it comes:
-- it answers the whole call.
for i = 0, count - 1 do
  local k = 6 + i * keysEach
  local a = 4 + i * argsEach
  local reply = nil
  repeat
    local orderKey = KEYS[k]
    local userId = ARGV[a]
    local quantityText = ARGV[a + 1]
    local quantity = quantityText + 0
    local orderId = ARGV[a + 2]
    local claimKey = claimMode and KEYS[k + 3] or nil

    if needsAdmission == nil then
      reply = {-13, skuKey}
      break
    end

    -- Rate limits, before anything of this purchase is written: over either, the answer
    -- is the wait and the only trace is none (a limited request records nothing).
    local passes = ARGV[a + 4]
    if limited and not string.find(passes, '-', 1, true) then
      if not nowUs then
        nowUs = (clock[1] .. clockUs) + 0
      end
      local buyerKey, clientKey = KEYS[k + 1], KEYS[k + 2]
      local buyerWait, buyerTat = peekRate(buyerKey, nowUs, buyerRate, buyerBurst)
      -- A client key ending in ':-' is the placeholder of a request whose address is
      -- unknown (NO_CLIENT_ADDRESS in src/shared/keys.ts): no client limit for it.
      local clientWait, clientTat = 0, nil
      if string.sub(clientKey, -2) ~= ':-' then
        clientWait, clientTat = peekRate(clientKey, nowUs, clientRate, clientBurst)
      end
      if buyerWait == false or clientWait == false then
        reply = {-13, buyerWait == false and buyerKey or clientKey}
        break
      end
      if buyerWait > 0 or clientWait > 0 then
        reply = {-19, math.max(buyerWait, clientWait)}
        break
      end
      takeRate(buyerKey, nowUs, buyerTat)
      takeRate(clientKey, nowUs, clientTat)
    end

    -- The Idempotency-Key claim, in claim mode: the key binds to this SKU, quantity and
    -- order id, or to those of its first use, whose order id this call continues with (a
    -- retry replays, another body is refused).
    local claimedNow = false
    if claimKey then
      -- The layout of claimValue in src/shared/keys.ts: sku|quantity|orderId.
      local claim = redis.pcall('SET', claimKey, skuId .. '|' .. quantityText .. '|' .. orderId, 'EX',
        claimTtl, 'NX', 'GET')
      if type(claim) == 'table' then
        if string.sub(claim.err, 1, 9) ~= 'WRONGTYPE' then
          return claim
        end
        reply = {-13, claimKey}
        break
      end
      if claim then
--- @include "claimedOrder"
        local claimedOrder = claimedOrderOf(claim, quantity)
        if not claimedOrder then
          reply = {-5}
          break
        end
        -- The same SKU, so the same partition: only the id at the end of the key differs.
        orderKey = string.sub(orderKey, 1, #orderKey - #orderId) .. claimedOrder
        orderId = claimedOrder
      else
        claimedNow = true
      end
    end

    -- An order id claimed in this very call is fresh (random, and no other call can hold
    -- it yet), so it names no order: only an id claimed earlier may have one to replay. Not
    -- so when the caller claimed: another request with the same key may have run its
    -- script between that claim and this one. An order an earlier purchase of this batch
    -- made is in Redis already (each purchase's writes are made before the next is
    -- decided).
    if not claimedNow then
      if not readOrderAt then
--- @include "order"
        readOrderAt = readOrder
      end
      local existing = readOrderAt(orderKey)
      if existing == false then
        reply = {-13, orderKey}
        break
      end
      if existing then
        if existing[1] ~= userId or existing[2] ~= skuId or existing[3] + 0 ~= quantity then
          reply = {-5}
          break
        end
        reply = {2, existing[4], existing[3] + 0, existing[5] + 0, existing[6] + 0, existing[1], false, orderId}
        break
      end
    end

    -- Only for a while after a rebuild (the field is absent otherwise): the caller may have
    -- claimed its key before the rebuild restored the claim to the order PostgreSQL has.
    -- Each restored claim counts only while it lives.
    if restoring then
      local restored = redis.pcall('HGET', restoredKey, claimKey or ARGV[a + 6])
      if type(restored) == 'table' then
        reply = {-13, restoredKey}
      elseif restored then
        local restoredOrder, livesUntil = string.match(restored, '^([^|]+)|(%d+)$')
        if restoredOrder and livesUntil + 0 > now and restoredOrder ~= orderId then
          -- The caller replays that order (its claim stays: it names the key's first use).
          reply = {-16, restoredOrder}
          break
        end
      end
    end

    -- The rest of the checks, each a refusal or nothing. A refusal takes back the claim
    -- this call made: atomic with the claim, so no other request with the key can have
    -- bought under it meanwhile.
    -- Passes the SKU asks for, checked by the caller (signed tokens) and vouched for here.
    -- After the replay above: a retry of a purchase that was made replays even once its
    -- admission has lapsed.
    if reply then
      -- refused above: the restored claims' hash holds the wrong type
    elseif needsQualification and not string.find(passes, 'q', 1, true) then
      reply = {-18}
    elseif needsAdmission and not string.find(passes, 'a', 1, true) then
      reply = {-17}
    elseif paused then
      reply = {-6}
    elseif outsideWindow then
      reply = {-2}
    else
      local held = redis.pcall('HGET', usersKey, userId)
      -- A held count HINCRBY cannot take (not a whole number as Redis writes one: no sign,
      -- no leading zero, at most 18 digits) is a corrupt hash: refused before any write
      -- (HINCRBY below would fail only after the stream had changed, and the batch's SKU
      -- write with it).
      if type(held) == 'table' or (held and held ~= '0' and not (#held <= 18 and string.match(held, '^[1-9]%d*$'))) then
        reply = {-13, usersKey}
      else
        held = held and held + 0 or 0
        if held + quantity > perUserLimit then
          reply = {-3, held}
        elseif available < quantity then
          reply = {-4, available}
        end
      end
    end
    local availableAfter, seqAfter, expiresAt, expiresAtText
    if not reply then
      availableAfter = string.format('%d', available - quantity)
      seqAfter = string.format('%d', seq + 1)
      expiresAt = now + ttlMs
      expiresAtText = string.format('%d', expiresAt)
      -- The event, as JSON without cjson (building and encoding a table took a fifth of the
      -- script's time), concatenated from strings in one expression (strings joined
      -- ahead for the whole batch cost a purchase alone more than they save). Every
      -- string in the event matches ID_PATTERN, ORDER_ID_PATTERN or
      -- IDEMPOTENCY_KEY_PATTERN (src/shared/keys.ts), none of which admits a character
      -- JSON escapes (test/unit/keys.test.ts keeps it so), and the quantity is the
      -- caller's validated whole number.
      local event = '{"v":1,"type":"order.reserved","sku":"' .. skuId .. '","seq":' .. seqAfter ..
        ',"delta":-' .. quantityText .. ',"stockAfter":' .. availableAfter .. ',"suppliedAfter":' ..
        sku[9] .. ',"at":' .. nowText .. ',"orderId":"' .. orderId .. '","userId":"' .. userId ..
        '","quantity":' .. quantityText .. ',"status":"reserved","idempotencyKey":"' .. ARGV[a + 3] ..
        '","createdAt":' .. nowText .. ',"expiresAt":' .. expiresAtText .. '}'
      -- With tracing on, the traceparent of the caller's span rides in the event (the relay
      -- and the writer continue the trace from it). Checked here too, so the event stays
      -- valid JSON.
      local traceparent = ARGV[a + 5]
      if #traceparent == 55 and string.match(traceparent, '^00%-%x+%-%x+%-%x%x$') then
        event = string.sub(event, 1, -2) .. ',"traceparent":"' .. traceparent .. '"}'
      end

      -- Writes. The expiry index and the stream first: they are the keys not read above. A
      -- refused stream takes back the expiry entry, which leaves the index as it was.
      local expiry = skuId .. ':' .. orderId
      local indexed = redis.pcall('ZADD', expiriesKey, expiresAtText, expiry)
      if type(indexed) == 'table' then
        if string.sub(indexed.err, 1, 9) ~= 'WRONGTYPE' then
          return indexed
        end
        reply = {-13, expiriesKey}
      elseif type(redis.pcall('XADD', eventsKey, '*', 'e', event)) == 'table' then
        redis.call('ZREM', expiriesKey, expiry)
        reply = {-13, eventsKey}
      end
    end
    if reply then
      if claimedNow then
        redis.call('DEL', claimKey)
      end
      break
    end

    -- The SKU's stock and sequence are written once, after the batch.
    available = available - quantity
    availableText = availableAfter
    seq = seq + 1
    seqText = seqAfter
    redis.call('HINCRBY', usersKey, userId, quantityText)
    -- The order's Idempotency-Key is in its event (PostgreSQL keeps it) and its claim, not
    -- here: nothing reads it from the order. orderText of lua/includes/order.lua, inline.
    redis.call('SET', orderKey, userId .. '|' .. skuId .. '|' .. quantityText .. '|reserved|' .. nowText ..
      '|' .. expiresAtText)
    -- A claim an earlier, refused call made (and took back) is gone; one a concurrent call
    -- made and this call continued: restate its full time to live, the order now exists.
    if claimKey and not claimedNow then
      redis.call('EXPIRE', claimKey, claimTtl)
    end
    reply = {1, 'reserved', quantity, now, expiresAt, userId, available, orderId}
  until true
  replies[i + 1] = reply
end
if seqText then
  redis.call('HSET', skuKey, 'available', availableText, 'seq', seqText)
end
if count == 1 then
  return replies[1]
end
return replies
