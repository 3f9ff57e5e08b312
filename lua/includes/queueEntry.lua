--[[
  The start of a buyer's join or poll (joinQueue-8.lua, pollQueue-8.lua): the SKU's state
  and gate, the clock, the buyer's rate limit and the client address's (the SKU's own
  limits, when its gate has them, replace the deployment's; a rate of 0 is none). Joins
  and polls share both. Needs the gcra, gate, nowMs and queueTicket includes.

  queueEntry(skuKey, rateKey, deploymentRate, deploymentBurst, clientKey, clientRate,
             clientBurst)
    -> entry, nil    entry = {available, startsAt, endsAt, admitRate (or false),
                     needsAdmission, needsQualification, now, nowUs, epoch (or false)}
    epoch: the SKU's waiting-room epoch (joinQueue-8.lua), absent until a join sets it
    -> nil, reply    {-1} SKU state missing; {-13, skuKey} a malformed gate;
                     {-19, waitMs} over either limit (nothing written)
]]
local function queueEntry(skuKey, rateKey, deploymentRate, deploymentBurst, clientKey, clientRate,
  clientBurst)
  local sku = redis.call('HMGET', skuKey, 'available', 'gate', 'startsAt', 'endsAt', 'admitRate',
    'queueEpoch')
  if not sku[1] then
    return nil, {-1}
  end
  local now, nowUs = nowMsAndUs()
  local needsAdmission, needsQualification, rate, burst, skuClientRate, skuClientBurst = gateOf(sku[2])
  if needsAdmission == nil then
    return nil, {-13, skuKey}
  end
  local wait, newTat = gcraPeek(rateKey, nowUs, tonumber(rate or deploymentRate), tonumber(burst or deploymentBurst))
  -- A client key ending in ':-' is the placeholder of an unknown address: no client limit,
  -- the deployment's or the SKU's.
  if string.sub(clientKey, -2) == ':-' then
    clientRate = 0
  elseif skuClientRate then
    clientRate, clientBurst = skuClientRate, skuClientBurst
  end
  local clientWait, clientTat = gcraPeek(clientKey, nowUs, tonumber(clientRate), tonumber(clientBurst))
  if wait > 0 or clientWait > 0 then
    return nil, {-19, math.max(wait, clientWait)}
  end
  gcraTake(rateKey, nowUs, newTat)
  gcraTake(clientKey, nowUs, clientTat)
  return {
    available = tonumber(sku[1]),
    startsAt = tonumber(sku[3]),
    endsAt = tonumber(sku[4]),
    admitRate = sku[5] or false,
    needsAdmission = needsAdmission,
    needsQualification = needsQualification,
    now = now,
    nowUs = nowUs,
    epoch = sku[6] or false,
  }, nil
end
