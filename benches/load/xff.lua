-- wrk script for the load benchmark: one fixed request with an X-Forwarded-For header, and a
-- machine-readable summary line.
--
--   wrk -t1 -c32 -d10s --latency -s benches/load/xff.lua http://127.0.0.1:PORT/ -- ADDRESS
--
-- The header is set once per thread in init(), so wrk builds the request bytes once and sends
-- the same request on every connection (keep-alive): the load generator does as little work as
-- possible per request. done() prints
--   RESULT {"requests":…,"duration_us":…,"p50_us":…,"p99_us":…,"status_errors":…,…}
-- where status_errors counts responses that were not 2xx/3xx (403s on the blocked path).

function init(args)
   if args[1] ~= nil and args[1] ~= "" then
      wrk.headers["X-Forwarded-For"] = args[1]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
      '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"mean_us":%.1f,"max_us":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
      e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
end
