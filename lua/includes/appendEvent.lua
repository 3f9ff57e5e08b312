--[[
  Bumps the SKU's sequence and appends one stock event to the partition's stream.
  Every script that changes a SKU ends with exactly one call, so "state changed" and
  "event recorded" are one atomic fact.
  Input: skuKey, eventsKey, event (a table; v, seq, stockAfter and suppliedAfter are filled in)
  Output: the new sequence
]]
local function appendEvent(skuKey, eventsKey, event)
  local seq = redis.call('HINCRBY', skuKey, 'seq', 1)
  event['v'] = 1
  event['seq'] = seq
  event['stockAfter'] = tonumber(redis.call('HGET', skuKey, 'available'))
  event['suppliedAfter'] = tonumber(redis.call('HGET', skuKey, 'supplied'))
  redis.call('XADD', eventsKey, '*', 'e', cjson.encode(event))
  return seq
end
