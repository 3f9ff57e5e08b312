--[[
  The Redis server's clock in milliseconds: one clock for every API instance.
]]
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The clock in milliseconds and in whole microseconds, as numbers (the waiting room's
-- scripts: the µs place a ticket in arrival order, so two joins do not share one).
local function nowMsAndUs()
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return math.floor(us / 1000), us
end
