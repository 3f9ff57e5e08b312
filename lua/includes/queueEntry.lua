--[[
  The start of a buyer's join or poll (joinQueue-7.lua, pollQueue-7.lua): the SKU's state
  and gate, the clock, and the buyer's rate limit (the SKU's own buyer limit, when its gate
  has one, replaces the deployment's). Needs the gcra, gate, nowMs and queueTicket includes.

  queueEntry(skuKey, rateKey, deploymentRate, deploymentBurst)
    -> entry, nil    entry = {available, startsAt, endsAt, admitRate (or false),
                     needsAdmission, needsQualification, now, nowUs}
    -> nil, reply    {-1} SKU state missing; {-13, skuKey} a malformed gate;
                     {-19, waitMs} over the limit (nothing written)
]]
local function queueEntry(skuKey, rateKey, deploymentRate, deploymentBurst)
  local sku = redis.call('HMGET', skuKey, 'available', 'gate', 'startsAt', 'endsAt', 'admitRate')
  if not sku[1] then
    return nil, {-1}
  end
  local now, nowUs = nowMsAndUs()
  local needsAdmission, needsQualification, rate, burst = gateOf(sku[2])
  if needsAdmission == nil then
    return nil, {-13, skuKey}
  end
  local wait, newTat = gcraPeek(rateKey, nowUs, tonumber(rate or deploymentRate), tonumber(burst or deploymentBurst))
  if wait > 0 then
    return nil, {-19, wait}
  end
  gcraTake(rateKey, nowUs, newTat)
  return {
    available = tonumber(sku[1]),
    startsAt = tonumber(sku[3]),
    endsAt = tonumber(sku[4]),
    admitRate = sku[5] or false,
    needsAdmission = needsAdmission,
    needsQualification = needsQualification,
    now = now,
    nowUs = nowUs,
  }, nil
end
