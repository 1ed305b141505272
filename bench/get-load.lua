-- A wrk script for the plain HTTP benchmarks: the request wrk is given (URL and -H headers), a JSON
-- summary at the end. wrk rather than autocannon: see flash-load.lua.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"p50ms":%.2f,"p99ms":%.2f,"maxms":%.2f,"non2xx":%d,"socketErrors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect + e.read + e.write, e.timeout))
end
