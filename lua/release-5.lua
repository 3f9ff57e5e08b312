--[[
  Ends a live order and puts its units back, exactly once: cancel (by its owner, from
  reserved or confirmed) or expire (by the sweeper, reserved and past its expiry).
  A second call finds the order already ended and changes nothing. Refused while the SKU
  is paused (a repair is reloading it). An expiry index entry whose order is gone or no
  longer reserved is dropped from the index (it can only be stale: rebuilds re-add the
  entries of the live reservations and never clear a whole partition's index).

  Input:
    KEYS[1] sku state hash        KEYS[2] per-user held units hash
    KEYS[3] order (lua/includes/order.lua)           KEYS[4] expiry index (zset)
    KEYS[5] partition event stream
    ARGV[1] sku id   ARGV[2] order id   ARGV[3] mode: 'cancel' or 'expire'
    ARGV[4] user id (cancel: must own the order; ignored for expire)
    ARGV[5] retention in seconds of an ended order
  Output:
    {1, status, quantity, createdAt, expiresAt, user}   released now
    {2, status, quantity, createdAt, expiresAt, user}   already ended that way: nothing changed
    {-1}  SKU state missing
    {-6}  paused
    {-7}  order not found (or owned by another user)
    {-8}  order cannot be released this way (status shown)  {-8, status}
    {-9}  not due yet (expire only)
    {-13, key}  a key holds the wrong type: refused before any write
]]
--- @include "nowMs"
--- @include "checkTypes"
--- @include "refuseChange"
--- @include "appendEvent"
--- @include "order"
--- @include "release"

return release(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  tonumber(ARGV[5]), nowMs(), false)
