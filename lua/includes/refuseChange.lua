--[[
  The last checks of a script that changes a live SKU, made before its first write: the
  SKU's state is present and not paused, and every key the script writes is absent or of
  the type it writes. Needs checkTypes.
  Input: skuKey, then pairs of key, expected type (as checkTypes)
  Output: nil when the script may write, otherwise the refusal to answer with:
    {-1} state missing, {-6} paused, {-13, key} a key of the wrong type
]]
local function refuseChange(skuKey, ...)
  local paused = redis.call('HGET', skuKey, 'paused')
  if not paused then
    return {-1}
  end
  if paused == '1' then
    return {-6}
  end
  local badKey = checkTypes(...)
  if badKey then
    return {-13, badKey}
  end
  return nil
end
