-- Shared by the wrk scripts that POST as prepared users: answers counted by HTTP status in each wrk
-- thread, and one JSON summary line at the end for the benchmark that ran wrk.
-- Loaded with dofile by a script that sets `request`; reads its tokens file with `read_tokens`.

-- A global, so done() can read each thread's.
statuses = {}
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

-- Bearer tokens, one per line.
function read_tokens(file)
  local tokens = {}
  for line in io.lines(file) do tokens[#tokens + 1] = line end
  return tokens
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
