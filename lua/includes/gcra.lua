--[[
  Rate limiting by GCRA (the generic cell rate algorithm): one key per limited party
  holds its theoretical arrival time (TAT), so a limit costs one small string per party,
  gone once the party has been quiet for a burst's worth of time.

  Times are whole microseconds (the clock from TIME, the TAT stored rounded down: at most
  1 µs in the party's favour per request), so rates up to a million a second and bursts
  within one millisecond count exactly.

  gcraPeek(key, nowUs, ratePerSecond, burst) -> waitMs, newTat
    waitMs: 0 when one more request is allowed now, else the ms (at least 1) until it would
    be. newTat: the TAT to record with gcraTake once every limit of the request passed
    (nil when there is nothing to record: no limit, or over it). A rate of 0 (or less) is
    no limit.
  gcraPeekChecked(key, nowUs, ratePerSecond, burst) -> waitMs, newTat: the same, except
    that waitMs is false when the key holds another type or a value no engine writes,
    where gcraPeek raises: for a script that must refuse one request and go on (the
    purchase script decides a batch, and a raise after an earlier purchase wrote would
    lose the batch's stock write).
  gcraTake(key, nowUs, newTat): records the request (nothing when newTat is nil).

  Plain functions rather than a function that returns a closure: a closure is an
  allocation on every call, and the purchase script runs this on every purchase.
]]
local function gcraPeekStored(stored, nowUs, ratePerSecond, burst)
  if ratePerSecond <= 0 then
    return 0, nil
  end
  local interval = 1000000 / ratePerSecond
  local horizon = burst * interval
  -- `+ 0` converts the stored decimal once (tonumber converts a string twice).
  local tat = stored and stored + 0 or nowUs
  -- Never behind the clock, and never further ahead than a full burst: a TAT left by a
  -- slower limit (a SKU's limit raised since) must not keep the party waiting for it.
  if tat < nowUs then
    tat = nowUs
  elseif tat > nowUs + horizon then
    tat = nowUs + horizon
  end
  local newTat = tat + interval
  local over = newTat - nowUs - horizon
  if over > 0 then
    return math.ceil(over / 1000), nil
  end
  return 0, newTat
end

local function gcraPeek(key, nowUs, ratePerSecond, burst)
  if ratePerSecond <= 0 then
    return 0, nil
  end
  return gcraPeekStored(redis.call('GET', key), nowUs, ratePerSecond, burst)
end

local function gcraPeekChecked(key, nowUs, ratePerSecond, burst)
  if ratePerSecond <= 0 then
    return 0, nil
  end
  local stored = redis.pcall('GET', key)
  if type(stored) == 'table' or (stored and not string.match(stored, '^%d+$')) then
    return false, nil
  end
  return gcraPeekStored(stored, nowUs, ratePerSecond, burst)
end

local function gcraTake(key, nowUs, newTat)
  if newTat then
    -- Integers formatted once: a Lua number handed to redis.call goes through printf's
    -- floating-point path.
    redis.call('SET', key, string.format('%d', math.floor(newTat)), 'PX',
      string.format('%d', math.ceil((newTat - nowUs) / 1000)))
  end
end
