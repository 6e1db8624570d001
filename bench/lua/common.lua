-- Shared by every scenario script (loaded with require; run.py puts bench/lua on LUA_PATH).
--
-- Each wrk thread runs the scenario script in its own Lua state; setup() and done() run in the
-- main state. Threads count non-2xx answers themselves (wrk's own `errors.status` counts only
-- >= 400), done() collects the counts and prints one machine-readable line for run.py:
--   BENCH_RESULT {"requests":..., "latency_us":{"p50":...}, ...}
local M = {}

local api_key = os.getenv("BENCH_API_KEY")
if api_key and api_key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. api_key
end
wrk.headers["Accept"] = "application/json"

local threads = {}
local next_id = 0

function M.setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
  table.insert(threads, thread)
end

-- Globals of each thread state (written by response(), read by done() through thread:get).
non2xx = 0
statuses = {}

function M.response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  end
end

local function json_escape(s)
  return (tostring(s):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end))
end

function M.done(summary, latency, requests)
  local non2xx_total = 0
  local by_status = {}
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + (thread:get("non2xx") or 0)
    local s = thread:get("statuses") or {}
    for code, n in pairs(s) do
      by_status[code] = (by_status[code] or 0) + n
    end
  end
  local status_parts = {}
  for code, n in pairs(by_status) do
    table.insert(status_parts, string.format('"%s":%d', json_escape(code), n))
  end
  local e = summary.errors
  local line = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status_ge_400":%d,"non2xx":%d},' ..
    '"statuses":{%s},' ..
    '"latency_us":{"min":%.1f,"mean":%.1f,"max":%.1f,"stdev":%.1f,"p50":%.1f,"p90":%.1f,"p95":%.1f,"p99":%.1f,"p999":%.1f}}',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status, non2xx_total,
    table.concat(status_parts, ","),
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9))
  io.write("BENCH_RESULT " .. line .. "\n")
end

-- A per-thread random source: math.random in every thread state starts from the same seed.
function M.seed_random(extra)
  local seed = os.time() + (tonumber(thread_id) or 0) * 7919 + (extra or 0)
  local f = io.open("/dev/urandom", "rb")
  if f then
    local b = f:read(4)
    f:close()
    if b and #b == 4 then
      seed = seed + b:byte(1) + b:byte(2) * 256 + b:byte(3) * 65536 + b:byte(4) * 16777216
    end
  end
  math.randomseed(seed)
  math.random(); math.random(); math.random()
end

return M
