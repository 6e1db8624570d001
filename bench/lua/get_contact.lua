-- GET /v1/contacts/{id}, rotating over the ids in $BENCH_IDS_FILE (one per line), each thread
-- starting at its own random offset. run.py GETs every id once before the measured run, so all
-- of them are in the record cache.
local common = require "common"
setup, response, done = common.setup, common.response, common.done

local ids = {}
local pos = 1

function init(args)
  local f = assert(io.open(os.getenv("BENCH_IDS_FILE"), "r"))
  for line in f:lines() do
    if #line > 0 then table.insert(ids, line) end
  end
  f:close()
  assert(#ids > 0, "no ids in BENCH_IDS_FILE")
  common.seed_random()
  pos = math.random(#ids)
end

function request()
  local id = ids[pos]
  pos = pos % #ids + 1
  return wrk.format("GET", "/v1/contacts/" .. id)
end
