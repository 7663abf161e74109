-- wrk script for the GoatCounter peer (bench/goatcounter_peer.py): page views as GoatCounter's
-- count.js sends them, built from the same lists and visitor model as bench/wrk.lua.
--
-- count.js (v2.7.0) sends navigator.sendBeacon(endpoint + query): a POST with an empty body and
-- the query p (path, with location.search), r (referrer), t (title), s (screen width), b (0 for a
-- browser), q (location.search, left out when empty) and rnd (5 random base-36 characters).
--
-- Environment:
--   BENCH_LISTS     Lua file with the lists (python bench/traffic.py lua > lists.lua)
--   BENCH_VHOST     the site's vhost; sent as Host, which is how GoatCounter finds the site
--   BENCH_XFF       "1" (default): the visitor's IP in X-Forwarded-For; "0": none, so every
--                   request comes from 127.0.0.1
--   BENCH_PAYLOADS  distinct requests pre-built per wrk thread (default 2500)
--   BENCH_VISITORS  distinct visitors per wrk thread (default 600)
--   BENCH_SEED      varies IPs between rounds so every round brings new visitors
--
--   BENCH_LISTS=lists.lua BENCH_VHOST=gc.bench.example wrk -t2 -c16 -d5s \
--     -s bench/goatcounter_wrk.lua http://127.0.0.1:8081/count

dofile(os.getenv("BENCH_LISTS"))
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrk_common.lua")
local pick, pick_path, visitor = common.pick, common.pick_path, common.visitor

local VHOST = os.getenv("BENCH_VHOST") or "gc.bench.example"
local XFF = (os.getenv("BENCH_XFF") or "1") ~= "0"
local N = tonumber(os.getenv("BENCH_PAYLOADS") or "2500")
local VISITORS = tonumber(os.getenv("BENCH_VISITORS") or "600")
local SEED = tonumber(os.getenv("BENCH_SEED") or "1")

local function url_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
local function rnd()
  local out = {}
  for i = 1, 5 do
    local k = math.random(1, 36)
    out[i] = B36:sub(k, k)
  end
  return table.concat(out)
end

local function count_request(v)
  local path = pick_path()
  local title = path == "/" and "Home" or path:sub(2):gsub("/", " - ")
  local query = {"p=" .. url_encode(path .. v.utm)}
  if v.ref ~= "" then query[#query + 1] = "r=" .. url_encode(v.ref) end
  query[#query + 1] = "t=" .. url_encode(title)
  query[#query + 1] = "s=" .. v.width
  query[#query + 1] = "b=0"
  if v.utm ~= "" then query[#query + 1] = "q=" .. url_encode(v.utm) end
  query[#query + 1] = "rnd=" .. rnd()
  local headers = {["Host"] = VHOST, ["User-Agent"] = v.ua, ["Accept-Language"] = v.lang,
    ["Origin"] = "https://" .. HOSTNAME, ["Referer"] = "https://" .. HOSTNAME .. path}
  if XFF then headers["X-Forwarded-For"] = v.ip end
  return wrk.format("POST", "/count?" .. table.concat(query, "&"), headers, "")
end

function init(args)
  math.randomseed(SEED * 7919 + (tid or 0) * 104729)
  local visitors = {}
  for i = 1, VISITORS do
    visitors[i] = visitor()
  end
  requests_ = {}
  for i = 1, N do
    requests_[i] = count_request(visitors[math.random(1, VISITORS)])
  end
  idx = 0
end

function request()
  idx = idx % N + 1
  return requests_[idx]
end
