import autocannon from "autocannon";

/**
 * A load process for the HTTP benchmarks: GETs one URL for a while with autocannon (optionally with a
 * bearer token) and prints its summary as JSON.
 */
const [url, connections, seconds, token] = process.argv.slice(2);

autocannon(
  {
    url,
    connections: Number(connections),
    duration: Number(seconds),
    headers: token ? { authorization: `Bearer ${token}` } : {},
  },
  (err, result) => {
    if (err) throw err;
    process.stdout.write(
      JSON.stringify({
        requestsPerSecond: Math.round(result.requests.total / result.duration),
        p50ms: result.latency.p50,
        p99ms: result.latency.p99,
        non2xx: result.non2xx,
      }),
    );
  },
);
