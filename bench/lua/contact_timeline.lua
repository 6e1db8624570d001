-- GET /v1/contacts/{id}/timeline of the contact run.py gave 200 activities (default page: limit 50,
-- every kind, history entries included). run.py puts the path in the URL.
local common = require "common"
wrk.method = "GET"
setup, response, done = common.setup, common.response, common.done
