--[[
  purchase-6.lua with the Idempotency-Key claim made in the same call: one round trip for
  a purchase. Only on a single Redis node, where the claim (in the user's hash slot) and
  the SKU's keys (in the partition's) may meet in one script.

  Input: as purchase-6.lua, plus
    KEYS[7] the claim key (SET NX with ARGV[1..4] as its value, or read when it exists)
    ARGV[7] the claim's time to live in seconds
    ARGV[4] is a fresh order id, used when the claim is new; an existing claim for the
    same SKU and quantity continues with its own order id.
  Output: as purchase-6.lua; the order id at the end of a success says which order it is.
]]
local skuKey = KEYS[1]
local usersKey = KEYS[2]
local orderKey = KEYS[3]
local expiriesKey = KEYS[4]
local eventsKey = KEYS[5]
local restoredKey = KEYS[6]
local claimKey = KEYS[7]
local claimTtl = ARGV[7]

local skuId = ARGV[1]
local userId = ARGV[2]
local quantity = tonumber(ARGV[3])
local orderId = ARGV[4]
local idemKey = ARGV[5]
local claimName = ARGV[6]

--- @include "purchase"
