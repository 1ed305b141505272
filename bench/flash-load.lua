-- The load of the flash-sale benchmark, run by wrk (C): purchase attempts at one campaign, each from a
-- random prepared buyer with a fresh Idempotency-Key. wrk rather than autocannon here: at 10,000
-- attempts/s a Node load generator takes most of one of this machine's two cores from the server.
-- Arguments (after wrk's `--`): a file of bearer tokens, one per line; the attempts path.

local tokens = {}
local path
local body = '{"quantity":1}'
local sent = 0
local prefix

function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  path = args[2]
  math.randomseed(os.time())
  -- Keys are unique per run (counter) and across runs (a random prefix).
  prefix = string.format("%08x", math.random(0, 0x7fffffff))
end

function request()
  sent = sent + 1
  return wrk.format("POST", path, {
    ["content-type"] = "application/json",
    ["authorization"] = "Bearer " .. tokens[math.random(#tokens)],
    ["idempotency-key"] = prefix .. "-" .. sent,
  }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"p50ms":%.2f,"p99ms":%.2f,"maxms":%.2f,"socketErrors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect + e.read + e.write, e.timeout))
end
