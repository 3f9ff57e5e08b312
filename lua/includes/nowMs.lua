--[[
  The Redis server's clock in milliseconds: one clock for every API instance.
]]
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The same clock as a decimal string too, built without formatting a number (Lua's
-- number-to-string conversion goes through printf's floating-point path, the priciest
-- step of a lean script): seconds, then the first three digits of the zero-padded
-- microseconds. Also the clock in whole microseconds as a decimal string (for rate
-- limits, which convert it only when one is on).
local function nowMsAndString()
  local t = redis.call('TIME')
  local us = t[2]
  if #us < 6 then
    us = string.rep('0', 6 - #us) .. us
  end
  local text = t[1] .. string.sub(us, 1, 3)
  return tonumber(text), text, t[1] .. us
end

-- The clock in milliseconds and in whole microseconds, as numbers (the waiting room's
-- scripts: the µs place a ticket in arrival order, so two joins do not share one).
local function nowMsAndUs()
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return math.floor(us / 1000), us
end
