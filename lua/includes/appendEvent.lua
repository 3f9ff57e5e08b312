--[[
  Every script that changes a SKU ends with exactly one event appended to the partition's
  stream, carrying the SKU's new sequence and its stock after the change, so "state
  changed" and "event recorded" are one atomic fact.

  eventFields(event, seq, stockAfter, suppliedAfter): the stream entry's fields.
  appendEvent(skuKey, eventsKey, event): bumps the sequence, reads the stock after the
  change, appends the event; answers the new sequence.
]]
local function eventFields(event, seq, stockAfter, suppliedAfter)
  event['v'] = 1
  event['seq'] = seq
  event['stockAfter'] = stockAfter
  event['suppliedAfter'] = suppliedAfter
  return cjson.encode(event)
end

local function appendEvent(skuKey, eventsKey, event)
  local seq = redis.call('HINCRBY', skuKey, 'seq', 1)
  local after = redis.call('HMGET', skuKey, 'available', 'supplied')
  redis.call('XADD', eventsKey, '*', 'e', eventFields(event, seq, tonumber(after[1]), tonumber(after[2])))
  return seq
end
