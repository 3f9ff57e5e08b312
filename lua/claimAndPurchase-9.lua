--[[
  purchase-8.lua with the Idempotency-Key claim made in the same call: one round trip for
  a purchase. Only on a single Redis node, where the claim (in the user's hash slot) and
  the SKU's keys (in the partition's) may meet in one script.

  Input: as purchase-8.lua, plus
    KEYS[9] the claim key (SET NX with the claim's value for ARGV[4], claimValue in
            src/shared/keys.ts, or read when it exists); also the claim's name in KEYS[6]
    ARGV[9] the claim's time to live in seconds
    ARGV[4] is a fresh order id, used when the claim is new; an existing claim for the
    same SKU and quantity continues with its own order id.
  Output: as purchase-8.lua; the order id at the end of a success says which order it is.
  A claim this call made is taken back when the purchase is refused: a refused attempt
  leaves nothing (its key binds no body; a retry decides again). A claim made earlier gets
  its full time to live back when its order is made.
]]
local claimKey, claimTtl, claimName = KEYS[9], ARGV[9], KEYS[9]

--- @include "purchase"
