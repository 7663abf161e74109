-- What bench/wrk.lua and bench/goatcounter_wrk.lua share: the thread ids, the visitor model and
-- the summary line run.py parses. Loaded after the lists file (PATHS, USER_AGENTS, ...):
--
--   local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "wrk_common.lua")

local common = {}

function setup(thread)
  common.thread_count = (common.thread_count or 0) + 1
  thread:set("tid", common.thread_count)
end

-- Zipf-ish path choice: cumulative weights 1/rank.
local cumulative, total = {}, 0
for i = 1, #PATHS do
  total = total + 1 / i
  cumulative[i] = total
end

function common.pick_path()
  local r = math.random() * total
  local lo, hi = 1, #PATHS
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cumulative[mid] < r then lo = mid + 1 else hi = mid end
  end
  return PATHS[lo]
end

function common.pick(list)
  return list[math.random(1, #list)]
end

-- A visitor keeps its IP, UA, language, screen and referrer; its page views vary the path,
-- so sessions get several pages (a referrer or UTM change would start a new session).
function common.visitor()
  local pick = common.pick
  local ip = string.format("%d.%d.%d.%d", pick(PUBLIC_FIRST), math.random(0, 255),
    math.random(0, 255), math.random(1, 254))
  return {ip = ip, ua = pick(USER_AGENTS), lang = pick(LANGUAGES), ref = pick(REFERRERS),
    utm = pick(UTM), width = pick(SCREEN_WIDTHS)}
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end

return common
