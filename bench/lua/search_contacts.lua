-- POST /v1/contacts/search with the body in $BENCH_BODY (one filter + a full-text query word).
local common = require "common"
wrk.method = "POST"
wrk.path = "/v1/contacts/search"
wrk.body = assert(os.getenv("BENCH_BODY"), "BENCH_BODY not set")
wrk.headers["Content-Type"] = "application/json"
setup, response, done = common.setup, common.response, common.done
