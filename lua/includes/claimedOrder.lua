--[[
  claimedOrderOf(claim, quantity): the order id an Idempotency-Key claim's value binds to
  this SKU (the purchase's local skuId) and quantity, or nil when it binds another body.
  The layout of claimValue and parseClaim in src/shared/keys.ts: sku|quantity|orderId.
]]
local function claimedOrderOf(claim, quantity)
  local claimedSku, claimedQuantity, claimedOrder = string.match(claim, '^([^|]+)|([^|]+)|(.+)$')
  if claimedSku ~= skuId or tonumber(claimedQuantity) ~= quantity
      or not string.match(claimedOrder, '^[0-9a-f-]+$') or #claimedOrder ~= 36 then
    return nil
  end
  return claimedOrder
end
