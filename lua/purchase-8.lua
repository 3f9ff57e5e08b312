--[[
  Decides one purchase: checks, then deducts stock, counts the user's units, records
  the order (reserved, with its expiry), indexes the expiry and appends one event.
  The order key doubles as the idempotency record: the caller derives orderId from the
  user's Idempotency-Key claim, so a retry arrives with the same orderId and is replayed.
  The caller has made that claim itself (a second round trip): on a Redis Cluster the claim
  lives in the user's slot, not the SKU's, so a refused attempt keeps its claim (taking it
  back could race a retry of the same key that buys). On a single node
  claimAndPurchase-9.lua makes the claim in the same call, and takes back the claim of a
  refused attempt.

  Input:
    KEYS[1] sku state hash        KEYS[2] per-user held units hash
    KEYS[3] order                 KEYS[4] expiry index (zset)
    KEYS[5] partition event stream
    KEYS[6] claims restored after a loss of Redis's data (claim key -> '<order id>|<ms until
            which the claim lives>')
    KEYS[7] the buyer's rate-limit key for this SKU
    KEYS[8] the client address's rate-limit key for this SKU (ending in ':-' when the address
            is unknown: then no client limit applies)
    ARGV[1] sku id   ARGV[2] user id   ARGV[3] quantity   ARGV[4] order id
    ARGV[5] idempotency key
    ARGV[6] the deployment's rate limits, '<buyer rate>|<buyer burst>|<client address
            rate>|<its burst>' (purchases per second, a rate of 0 is no limit; the SKU's
            gate overrides either), '' when none is on, '-' when this request was
            counted by an earlier call (no limit applies)
    ARGV[7] the passes the caller verified: 'a' admitted (Admission-Token), 'q' qualified
            (Qualification-Token), in any order; '' none
    ARGV[8] the W3C traceparent to carry in the event, '' when tracing is off
    ARGV[9] the claim's key name (a field of KEYS[6])
  Output (the order layout every order script answers with, plus the order id):
    {1, 'reserved', quantity, createdAt, expiresAt, user, available, orderId}  order created
    {2, status, quantity, createdAt, expiresAt, user, nil, orderId}   replay of the existing order
    {-1}  SKU state missing (rebuild from PostgreSQL; never treated as zero)
    {-2}  sale not open (before startsAt or after endsAt)
    {-3, held}       per-user limit would be exceeded
    {-4, available}  not enough stock
    {-5}  the order id, or the key's claim, belongs to another user, SKU or quantity
    {-6}  sales paused (repair in progress)
    {-13, key}  a key holds the wrong type, or the SKU hash a malformed gate: refused
                before any write
    {-16, orderId}  the rebuild restored this key's claim to another order while the
                    caller held a placeholder: replay that order instead of buying again
    {-17}  the SKU sells through its waiting room and the caller is not admitted
    {-18}  the SKU requires qualification and the caller is not qualified
    {-19, ms}  over the buyer's or the client address's rate: retry after ms (nothing written)
]]
-- The caller has claimed the key.
local claimKey, claimTtl, claimName = nil, nil, ARGV[9]

--- @include "purchase"
