--[[
  purchase-6.lua with the Idempotency-Key claim made in the same call: one round trip for
  a purchase. Only on a single Redis node, where the claim (in the user's hash slot) and
  the SKU's keys (in the partition's) may meet in one script.

  Input: as purchase-6.lua, plus
    KEYS[7] the claim key (SET NX with ARGV[8] as its value, or read when it exists)
    ARGV[7] the claim's time to live in seconds
    ARGV[8] the claim's value for ARGV[4] (claimValue in src/shared/keys.ts)
    ARGV[4] is a fresh order id, used when the claim is new; an existing claim for the
    same SKU and quantity continues with its own order id.
  Output: as purchase-6.lua; the order id at the end of a success says which order it is.
]]
local claimKey, claimTtl, claimValue = KEYS[7], ARGV[7], ARGV[8]

--- @include "purchase"
