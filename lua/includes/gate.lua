--[[
  A SKU's admission gate: one field of its state hash, `gate`, absent when the SKU has no
  admission control of its own (src/inventory/admission-fields.ts writes it):
    '<passes>|<buyer rate>|<buyer burst>' or, when the SKU limits client addresses,
    '<passes>|<buyer rate>|<buyer burst>|<client rate>|<client burst>'
  <passes> lists what a purchase must carry: 'a' an Admission-Token (the SKU sells through
  its waiting room), 'q' a Qualification-Token. Each rate and its burst, when not empty,
  replace the deployment's buyer or client-address limit. Three parts without a client
  limit: the form engines older than client limits read, so they keep selling such SKUs.
  One field rather than several: a SKU without admission control costs the purchase one
  lookup that finds nothing.

  gateOf(value) -> needsAdmission, needsQualification, buyerRate or nil, buyerBurst or nil,
                   clientRate or nil, clientBurst or nil
    needsAdmission is nil for a malformed value: the caller refuses as for a key of the
    wrong type (-13), before writing anything.
]]
local function gateOf(value)
  if not value then
    return false, false, nil, nil, nil, nil
  end
  -- Three parts, then the client pair when there is one: one scan of the value.
  local needs, rate, burst, tail = string.match(value, '^([aq]*)|([^|]*)|([^|]*)(.*)$')
  if not needs then
    return nil
  end
  local clientRate, clientBurst = nil, nil
  if tail ~= '' then
    clientRate, clientBurst = string.match(tail, '^|([^|]*)|([^|]*)$')
    if not clientRate then
      return nil
    end
  end
  if rate == '' then
    rate, burst = nil, nil
  end
  if clientRate == '' then
    clientRate, clientBurst = nil, nil
  end
  return string.find(needs, 'a', 1, true) ~= nil, string.find(needs, 'q', 1, true) ~= nil, rate, burst,
    clientRate, clientBurst
end
