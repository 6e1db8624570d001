-- POST /v1/contacts, a unique email per request: random per-thread prefix + thread id + counter.
local common = require "common"
setup, response, done = common.setup, common.response, common.done

-- wrk.format() uses its headers argument *instead of* wrk.headers, so copy them (Authorization).
local headers = {}
local first_names = { "Ava", "Noah", "Mia", "Liam", "Zoe", "Ethan", "Leah", "Omar", "Ines", "Kenji" }
local last_names = { "Garcia", "Nguyen", "Smith", "Okafor", "Rossi", "Kowalski", "Tanaka", "Haddad" }
local titles = { "Account Executive", "Software Engineer", "Head of Marketing", "CFO", "Product Manager" }
local stages = { "subscriber", "lead", "qualified", "opportunity", "customer" }
local prefix = "x"
local counter = 0

function init(args)
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Content-Type"] = "application/json"
  common.seed_random(17)
  prefix = string.format("%08x", math.random(0, 0x7fffffff))
end

function request()
  counter = counter + 1
  local fn = first_names[math.random(#first_names)]
  local ln = last_names[math.random(#last_names)]
  local body = string.format(
    '{"first_name":"%s","last_name":"%s","email":"%s.%s.%s-%d-%d@loadtest.example.com",' ..
    '"job_title":"%s","lifecycle_stage":"%s","tags":["bench"]}',
    fn, ln, fn:lower(), ln:lower(), prefix, thread_id or 0, counter,
    titles[math.random(#titles)], stages[math.random(#stages)])
  return wrk.format("POST", "/v1/contacts", headers, body)
end
