-- Load script for wrk (bench/lib/wrk.ts). Requests come from the file named by
-- BENCH_REQUESTS: one per line, "METHOD<TAB>PATH<TAB>HEXBODY" (body may be empty);
-- every thread cycles through them from its own offset. BENCH_HEADERS: "Name: value"
-- lines separated by "|". BENCH_MAX: stop a thread after this many responses.
-- BENCH_DELAY_MS: each connection waits this long before its next request (a paced load
-- instead of a saturating one).
-- At the end one JSON line with the totals and latency percentiles (microseconds).
local reqs = {}
local headers = {}
local max = tonumber(os.getenv("BENCH_MAX") or "0") or 0
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
local counter = 0
local threads = {}

local function unhex(s)
  return (s:gsub("..", function(cc) return string.char(tonumber(cc, 16)) end))
end

local function loadReqs()
  local file = os.getenv("BENCH_REQUESTS")
  if file then
    for line in io.lines(file) do
      local method, path, body = line:match("^(%S+)\t(%S+)\t?(%x*)$")
      if method then reqs[#reqs + 1] = { method = method, path = path, body = body ~= "" and unhex(body) or nil } end
    end
  end
  local h = os.getenv("BENCH_HEADERS")
  if h and h ~= "" then
    for pair in h:gmatch("[^|]+") do
      local k, v = pair:match("^%s*([^:]+):%s*(.*)$")
      if k then headers[k] = v end
    end
  end
end

function setup(thread)
  thread:set("offset", #threads * 7919)
  threads[#threads + 1] = thread
end

function init(args)
  loadReqs()
  counter = 0
  if #reqs > 0 then
    local compiled = {}
    for i, r in ipairs(reqs) do
      local hd = {}
      for k, v in pairs(headers) do hd[k] = v end
      if r.body then hd["Content-Length"] = tostring(#r.body) end
      compiled[i] = wrk.format(r.method, r.path, hd, r.body)
    end
    reqs = compiled
  end
  idx = (offset or 0) % math.max(#reqs, 1)
end

function request()
  if #reqs == 0 then return wrk.request() end
  idx = idx + 1
  if idx > #reqs then idx = 1 end
  return reqs[idx]
end

if pause > 0 then
  function delay() return pause end
end

if max > 0 then
  function response(status, hdrs, body)
    counter = counter + 1
    if counter >= max then wrk.thread:stop() end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
