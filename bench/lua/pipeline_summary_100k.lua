-- GET /v1/reports/pipeline-summary?pipeline_id={id}: the default pipeline of a second bench workspace,
-- bulk-loaded with 100,000 live deals (+ 2,000 archived). run.py puts the path in the URL and that
-- workspace's API key in $BENCH_API_KEY.
local common = require "common"
wrk.method = "GET"
setup, response, done = common.setup, common.response, common.done
