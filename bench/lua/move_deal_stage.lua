-- POST /v1/deals/{id}/stage {"stage_id": ...}: each request moves one deal between two OPEN stages of
-- the default pipeline ($BENCH_STAGE_A <-> $BENCH_STAGE_B), rotating over the deals in $BENCH_MOVE_FILE
-- (one "deal_id current_stage_id" per line; run.py writes it from the database before every wrk run, so
-- a warm-up or an earlier run does not leave the script asking for a no-op move to the stage a deal is
-- already in). A deal is visited again only after every other deal of the set (~1,000), so with 32
-- connections the row lock taken by a move (SELECT ... FOR UPDATE on the deal) practically never waits
-- for another request. With several wrk threads each takes its own share of the deals.
local common = require "common"
setup, response, done = common.setup, common.response, common.done

-- wrk.format() uses its headers argument *instead of* wrk.headers, so copy them (Authorization).
local headers = {}
local ids = {}
local stage_of = {}
local stage_a, stage_b
local pos = 1

function init(args)
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
  stage_a = assert(os.getenv("BENCH_STAGE_A"), "BENCH_STAGE_A not set")
  stage_b = assert(os.getenv("BENCH_STAGE_B"), "BENCH_STAGE_B not set")
  local threads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1") or 1
  local me = tonumber(thread_id) or 1
  local f = assert(io.open(assert(os.getenv("BENCH_MOVE_FILE"), "BENCH_MOVE_FILE not set"), "r"))
  local n = 0
  for line in f:lines() do
    local id, stage = line:match("^(%S+)%s+(%S+)")
    if id then
      if n % threads == me - 1 then
        table.insert(ids, id)
        stage_of[id] = stage
      end
      n = n + 1
    end
  end
  f:close()
  assert(#ids > 0, "no deals in BENCH_MOVE_FILE for this thread")
  common.seed_random(31)
  pos = math.random(#ids)
end

function request()
  local id = ids[pos]
  pos = pos % #ids + 1
  local target = stage_b
  if stage_of[id] == stage_b then target = stage_a end
  stage_of[id] = target
  return wrk.format("POST", "/v1/deals/" .. id .. "/stage", headers, '{"stage_id":"' .. target .. '"}')
end
