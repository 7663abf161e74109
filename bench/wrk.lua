-- wrk script for trail's benchmarks: varied Pirsch hits, single (/api/v1/hit) or batched, and
-- the same page views as browsers send them (tracker.js's collect, pa.js's GET /api/v1/hit).
--
-- Environment:
--   BENCH_LISTS     Lua file with the lists (python bench/traffic.py lua > lists.lua)
--   BENCH_KEY       the site's access key (pa_...); ignored by the bare app
--   BENCH_MODE      "hit" (default), "batch", "collect" (POST /api/v1/collect as tracker.js sends
--                   it), "pirsch_browser" (GET /api/v1/hit?code=... as pa.js sends it) or
--                   "pirsch_event" (POST /api/v1/event with identification_code, as pa.js sends it)
--   BENCH_SITE_ID   the website id (collect) / BENCH_CODE its identification code (pirsch_*)
--   BENCH_PAYLOADS  distinct requests pre-built per wrk thread (default 2500 hits / 24 batches)
--   BENCH_BATCH     hits per batch request (default 500)
--   BENCH_VISITORS  distinct visitors (IP + UA + language + referrer) per wrk thread
--   BENCH_SEED      varies IPs between rounds so every round brings new visitors
-- Browser modes send the visitor's IP as X-Forwarded-For (the server must trust 127.0.0.1) and
-- its UA, language and Origin as headers, as a browser behind a proxy would.
-- Each thread pre-formats its requests in init() and request() only cycles through them, so the
-- generator spends its CPU on sockets, not on building JSON.
--
--   BENCH_LISTS=lists.lua BENCH_KEY=pa_... wrk -t2 -c16 -d5s -s bench/wrk.lua http://127.0.0.1:8000/api/v1/hit

dofile(os.getenv("BENCH_LISTS"))
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrk_common.lua")
local pick, pick_path, visitor = common.pick, common.pick_path, common.visitor

local KEY = os.getenv("BENCH_KEY") or "none"
local MODE = os.getenv("BENCH_MODE") or "hit"
local BATCH = tonumber(os.getenv("BENCH_BATCH") or "500")
local DEFAULT_N = MODE == "batch" and 24 or 2500
local N = tonumber(os.getenv("BENCH_PAYLOADS") or tostring(DEFAULT_N))
local SITE_ID = os.getenv("BENCH_SITE_ID") or ""
local CODE = os.getenv("BENCH_CODE") or ""
local SEED = tonumber(os.getenv("BENCH_SEED") or "1")
-- visitors per thread: ~4 page views each per pass over the hit table
local VISITORS = tonumber(os.getenv("BENCH_VISITORS") or (MODE == "batch" and "3000" or "600"))

local function item(v, time)
  local path = pick_path()
  local title = path == "/" and "Home" or path:sub(2):gsub("/", " - ")
  local extra = time and string.format(',"time":"%s"', time) or ""
  return string.format(
    '{"url":"https://%s%s%s","ip":"%s","user_agent":"%s","accept_language":"%s","referrer":"%s",'
      .. '"title":"%s","screen_width":%d,"screen_height":900%s}',
    HOSTNAME, path, v.utm, v.ip, v.ua, v.lang, v.ref, title, v.width, extra)
end

local function batch_body()
  local now = os.time()
  local items = {}
  for i = 1, BATCH do
    -- spread over the last hour; the millisecond part keeps items of one second apart
    local t = now - math.random(0, 3599)
    items[i] = item(visitors[math.random(1, #visitors)], os.date("!%Y-%m-%dT%H:%M:%S", t) .. string.format(".%03dZ", math.random(0, 999)))
  end
  return "[" .. table.concat(items, ",") .. "]"
end

local function url_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- One page view as a browser sends it: method, path, headers, body.
local function browser_request(v)
  local path = pick_path()
  local title = path == "/" and "Home" or path:sub(2):gsub("/", " - ")
  local url = string.format("https://%s%s%s", HOSTNAME, path, v.utm)
  local headers = {["User-Agent"] = v.ua, ["Accept-Language"] = v.lang, ["X-Forwarded-For"] = v.ip,
    ["Origin"] = "https://" .. HOSTNAME}
  if MODE == "collect" then
    headers["Content-Type"] = "text/plain;charset=UTF-8"
    local body = string.format(
      '{"website_id":"%s","event_type":"page_view","url":"%s","path":"%s","referrer":"%s",'
        .. '"title":"%s","screen_width":%d,"screen_height":900}',
      SITE_ID, url, path:match("^[^?]*"), v.ref, title, v.width)
    return wrk.format("POST", "/api/v1/collect", headers, body)
  end
  if MODE == "pirsch_event" then
    headers["Content-Type"] = "application/json"
    local body = string.format(
      '{"identification_code":"%s","url":"%s","title":"%s","referrer":"%s","screen_width":%d,'
        .. '"screen_height":900,"event_name":"%s","event_duration":%d,"event_meta":{"plan":"%s"}}',
      CODE, url, title, v.ref, v.width, pick({"signup", "download", "play"}), math.random(0, 60),
      pick({"free", "pro"}))
    return wrk.format("POST", "/api/v1/event", headers, body)
  end
  local query = string.format("nc=%d&code=%s&url=%s&t=%s&ref=%s&w=%d&h=900",
    math.random(1, 2 ^ 30), CODE, url_encode(url), url_encode(title), url_encode(v.ref), v.width)
  return wrk.format("GET", "/api/v1/hit?" .. query, headers, nil)
end

function init(args)
  math.randomseed(SEED * 7919 + (tid or 0) * 104729)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. KEY}
  visitors = {}
  for i = 1, VISITORS do
    visitors[i] = visitor()
  end
  requests_ = {}
  for i = 1, N do
    if MODE == "collect" or MODE == "pirsch_browser" or MODE == "pirsch_event" then
      requests_[i] = browser_request(visitors[math.random(1, VISITORS)])
    else
      local body = MODE == "batch" and batch_body() or item(visitors[math.random(1, VISITORS)], nil)
      requests_[i] = wrk.format("POST", nil, headers, body)
    end
  end
  idx = 0
end

function request()
  idx = idx % N + 1
  return requests_[idx]
end
