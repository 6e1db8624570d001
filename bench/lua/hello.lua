-- GET /health: the bare hello-world on the same server (no auth header, touches nothing).
local common = require "common"
wrk.headers["Authorization"] = nil
wrk.method = "GET"
wrk.path = "/health"
setup, response, done = common.setup, common.response, common.done
