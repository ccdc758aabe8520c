// Passive health checking (Envoy's outlier detection): a host that keeps failing is ejected from
// load balancing for a while, longer each time it is ejected again; never more than a maximum
// share of the cluster at once. One detector per cluster per worker, fed with every request's
// outcome on that worker; no locks. Time is passed in (nanoseconds of a steady clock) so tests
// drive it with a fake clock.
#ifndef OUTRIGGER_PROXY_UPSTREAM_OUTLIER_DETECTOR_H_
#define OUTRIGGER_PROXY_UPSTREAM_OUTLIER_DETECTOR_H_

#include <cstdint>
#include <string>
#include <vector>

namespace outrigger::proxy {

struct OutlierConfig {
  uint32_t consecutive_5xx = 5;              // 0 disables
  uint32_t consecutive_gateway_failure = 0;  // 0 disables
  int64_t interval_ns = 10'000'000'000;
  int64_t base_ejection_ns = 30'000'000'000;
  int64_t max_ejection_ns = 300'000'000'000;
  uint32_t max_ejection_percent = 10;
  uint32_t success_rate_minimum_hosts = 0;  // 0 disables success-rate ejection
  uint32_t success_rate_request_volume = 100;
  uint32_t success_rate_stdev_factor = 1900;  // in thousandths
};

// What happened to one request at one host.
enum class Outcome {
  kSuccess,         // any answer below 500
  kServerError,     // 500, 501, 505..599 from the host
  kGatewayError,    // 502, 503, 504 from the host
  kConnectFailure,  // connect failed or timed out: a gateway error and a 5xx
  kReset,           // closed or reset before the response head: a gateway error and a 5xx
  kTimeout,         // no response head within the (per-try) timeout: a gateway error and a 5xx
};

// Per-host detector state. Lives in the host; the detector reads and writes it.
struct OutlierHostState {
  uint32_t consecutive_5xx = 0;
  uint32_t consecutive_gateway = 0;
  uint32_t ejections = 0;        // how many times ejected so far (makes the next one longer)
  int64_t ejected_until_ns = 0;  // > now: ejected
  bool ejected = false;
  // Success-rate counters for the current interval.
  uint64_t interval_requests = 0;
  uint64_t interval_successes = 0;
  bool IsEjected() const { return ejected; }
};

class OutlierDetector {
 public:
  explicit OutlierDetector(OutlierConfig config) : config_(config) {}
  const OutlierConfig& config() const { return config_; }

  // Records an outcome. Returns true when this call ejected the host (the caller rebuilds its
  // balancer and counts the ejection). `hosts` are all of the cluster's host states, for the
  // max-ejection-percent check; `host` is one of them.
  bool Record(OutlierHostState* host, Outcome outcome, const std::vector<OutlierHostState*>& hosts,
              int64_t now_ns);
  // Ends ejections that are over and (every interval) runs success-rate ejection. Call it
  // often (the worker's 100 ms sweep). Returns true when any host was ejected or returned.
  bool Tick(const std::vector<OutlierHostState*>& hosts, int64_t now_ns);

 private:
  bool Eject(OutlierHostState* host, const std::vector<OutlierHostState*>& hosts, int64_t now_ns);
  // The end-of-interval work of Tick(): multiplier decay, success-rate ejection, counter reset.
  bool EndInterval(const std::vector<OutlierHostState*>& hosts, int64_t interval_start_ns,
                   int64_t now_ns);
  OutlierConfig config_;
  int64_t next_interval_ns_ = 0;
  bool interval_started_ = false;  // set by the first Tick()
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_UPSTREAM_OUTLIER_DETECTOR_H_
