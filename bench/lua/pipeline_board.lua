-- GET /v1/pipelines/{default pipeline id}/board (default limit: the first 20 deals of each of the 7
-- stages, plus each stage's count and amounts per currency). run.py puts the path in the URL.
local common = require "common"
wrk.method = "GET"
setup, response, done = common.setup, common.response, common.done
