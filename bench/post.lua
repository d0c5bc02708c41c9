-- wrk script: POST one message per request with a unique text.
local key = os.getenv("KEY")
local batch = tonumber(os.getenv("BATCH") or "0")
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"
local n = 0
local tid = tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  if batch > 0 then
    local parts = {}
    for i = 1, batch do
      parts[i] = string.format('{"to":"+7916%07d","text":"bench %s-%d-%d","sender":"KASKAD"}', (n * batch + i) % 10000000, tid, n, i)
    end
    wrk.path = "/v1/messages/batch"
    return wrk.format(nil, nil, nil, '{"messages":[' .. table.concat(parts, ",") .. ']}')
  end
  wrk.path = "/v1/messages"
  return wrk.format(nil, nil, nil, string.format('{"to":"+7916%07d","text":"bench %s-%d","sender":"KASKAD"}', n % 10000000, tid, n))
end
