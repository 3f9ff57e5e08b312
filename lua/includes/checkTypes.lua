--[[
  Redis does not undo a script's earlier writes when a later command fails, so every
  script proves its writes will succeed before making any: each key it writes must be
  absent or of the type the script writes to it.
  Input: pairs of key, expected type ('hash', 'zset', 'stream', 'string')
  Output: nil when all match, otherwise the first mismatching key
]]
local function checkTypes(...)
  local args = {...}
  for i = 1, #args, 2 do
    local t = redis.call('TYPE', args[i])['ok']
    if t ~= 'none' and t ~= args[i + 1] then
      return args[i]
    end
  end
  return nil
end
