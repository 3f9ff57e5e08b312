--[[
  Acknowledges relayed entries and deletes them from the partition's stream in one atomic
  step (Kafka has them), so a crash can never leave an acknowledged entry behind.

  Input:
    KEYS[1] partition event stream
    ARGV[1] consumer group   ARGV[2..] entry ids
  Output:
    the number of entries deleted
]]
local eventsKey = KEYS[1]

redis.call('XACK', eventsKey, ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', eventsKey, unpack(ARGV, 2))
