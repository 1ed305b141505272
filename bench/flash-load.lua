-- The load of the flash-sale benchmark, run by wrk (C): purchase attempts at one campaign, each from a
-- random prepared buyer with a fresh Idempotency-Key. wrk rather than autocannon here: at 10,000
-- attempts/s a Node load generator takes most of one of this machine's two cores from the server.
-- Arguments (after wrk's `--`): a file of bearer tokens, one per line; the attempts path.

local tokens = {}
local path
local body = '{"quantity":1}'
local sent = 0
local prefix
-- Answers by HTTP status, per wrk thread (a global, so done() can read it from each thread).
statuses = {}
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

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

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local e = summary.errors
  local total, counts = {}, {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do counts[#counts + 1] = string.format('"%d":%d', status, n) end
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"p50ms":%.2f,"p99ms":%.2f,"maxms":%.2f,"socketErrors":%d,"timeouts":%d,"statusCodes":{%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect + e.read + e.write, e.timeout, table.concat(counts, ",")))
end
