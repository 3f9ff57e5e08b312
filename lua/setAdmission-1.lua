--[[
  Writes a SKU's admission settings (waiting room, qualification, its own buyer and
  client-address rate limits) into its state hash, where the purchase and queue scripts read them: the change
  holds for every API instance from the next request on. PostgreSQL took the change first,
  with a new version; a version not newer than the hash's is older news and changes
  nothing, so two changes racing end as the later one in both stores. Not a stock change:
  no sequence, no event. A missing state is left missing (a hash holding only these
  fields would pass for a SKU state, and the rebuild would refuse to load over it).

  Input:
    KEYS[1] sku state hash
    ARGV[1] the settings' version (from PostgreSQL)
    ARGV[2..] field, value pairs ('' = delete the field)
  Output:
    {1}   written
    {2}   the hash holds this version or a newer one: nothing written
    {-1}  SKU state missing: nothing written (the rebuild loads the settings)
]]
local skuKey = KEYS[1]
local version = tonumber(ARGV[1])

local current = redis.call('HMGET', skuKey, 'available', 'admissionVersion')
if not current[1] then
  return {-1}
end
if current[2] and tonumber(current[2]) >= version then
  return {2}
end

-- Writes.
for i = 2, #ARGV - 1, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', skuKey, ARGV[i])
  else
    redis.call('HSET', skuKey, ARGV[i], ARGV[i + 1])
  end
end
redis.call('HSET', skuKey, 'admissionVersion', ARGV[1])
return {1}
