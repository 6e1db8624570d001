-- GET /v1/contacts?limit=50 (first page).
local common = require "common"
wrk.method = "GET"
wrk.path = "/v1/contacts?limit=50"
setup, response, done = common.setup, common.response, common.done
