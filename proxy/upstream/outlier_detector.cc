// See outlier_detector.h.
//
// Semantics follow Envoy's outlier detection (consecutive 5xx, consecutive gateway failure and
// success-rate ejection), with Envoy's choices where a detail is open:
//  - max_ejection_percent never stops the first ejection: one host may always be ejected, even
//    the only host of a cluster. The balancer's panic mode then routes to it anyway, so ejecting
//    it costs nothing, and a low percentage on a small cluster would otherwise disable detection.
//  - The n-th ejection lasts n * base_ejection, capped at max_ejection, where a max below the
//    base counts as the base (Envoy: "max_ejection_time or base_ejection_time, whichever is
//    larger").
//  - The multiplier decays: at each interval boundary a host that is in, and was in for the whole
//    interval, and saw no failure in it, loses one of its counted ejections.
//  - Success rate uses the population standard deviation of the hosts with enough requests.
// The detector keeps no per-host state of its own (it is all in OutlierHostState), so hosts may
// come and go between calls.
#include "proxy/upstream/outlier_detector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace outrigger::proxy {
namespace {

constexpr int64_t kDefaultIntervalNs = 10'000'000'000;

int64_t IntervalNs(const OutlierConfig& config) {
  return config.interval_ns > 0 ? config.interval_ns : kDefaultIntervalNs;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > std::numeric_limits<int64_t>::max() - b) {
    return std::numeric_limits<int64_t>::max();
  }
  return a + b;
}

// How long the next ejection of a host ejected `ejections` times before lasts.
int64_t EjectionNs(const OutlierConfig& config, uint32_t ejections) {
  const int64_t base = std::max<int64_t>(0, config.base_ejection_ns);
  const int64_t cap = std::max(base, config.max_ejection_ns);
  const uint64_t n = uint64_t{ejections} + 1;
  if (base == 0) return 0;
  // n * base > cap, tested without multiplying (which could overflow).
  if (n > static_cast<uint64_t>(cap / base)) return cap;
  return static_cast<int64_t>(n) * base;
}

}  // namespace

bool OutlierDetector::Record(OutlierHostState* host, Outcome outcome,
                             const std::vector<OutlierHostState*>& hosts, int64_t now_ns) {
  if (host == nullptr) return false;
  ++host->interval_requests;
  switch (outcome) {
    case Outcome::kSuccess:
      ++host->interval_successes;
      host->consecutive_5xx = 0;
      host->consecutive_gateway = 0;
      return false;
    case Outcome::kServerError:
      // A plain 5xx breaks a run of gateway failures (Envoy does the same).
      ++host->consecutive_5xx;
      host->consecutive_gateway = 0;
      break;
    case Outcome::kGatewayError:
    case Outcome::kConnectFailure:
    case Outcome::kReset:
    case Outcome::kTimeout:
      ++host->consecutive_5xx;
      ++host->consecutive_gateway;
      break;
  }
  // An ejected host still gets requests in panic mode; its failures keep counting but eject
  // nothing (the counters are cleared when it returns, see Tick()).
  if (host->ejected) return false;
  bool ejected = false;
  if (config_.consecutive_5xx > 0 && host->consecutive_5xx >= config_.consecutive_5xx) {
    // Reset even when the ejection is refused (max percent), so the host needs a fresh run of
    // failures rather than being retried on every further one.
    host->consecutive_5xx = 0;
    ejected = Eject(host, hosts, now_ns);
  }
  if (!ejected && config_.consecutive_gateway_failure > 0 &&
      host->consecutive_gateway >= config_.consecutive_gateway_failure) {
    host->consecutive_gateway = 0;
    ejected = Eject(host, hosts, now_ns);
  }
  return ejected;
}

bool OutlierDetector::Eject(OutlierHostState* host, const std::vector<OutlierHostState*>& hosts,
                            int64_t now_ns) {
  if (host->ejected) return false;
  uint64_t already_ejected = 0;
  for (const OutlierHostState* other : hosts) {
    if (other != nullptr && other->ejected) ++already_ejected;
  }
  // (ejected + 1) / size > percent / 100, in integers; the first ejection is always allowed.
  if (already_ejected > 0 &&
      (already_ejected + 1) * 100 > uint64_t{config_.max_ejection_percent} * hosts.size()) {
    return false;
  }
  host->ejected = true;
  host->ejected_until_ns = SaturatingAdd(now_ns, EjectionNs(config_, host->ejections));
  ++host->ejections;
  return true;
}

bool OutlierDetector::Tick(const std::vector<OutlierHostState*>& hosts, int64_t now_ns) {
  bool changed = false;
  for (OutlierHostState* host : hosts) {
    if (host == nullptr || !host->ejected || host->ejected_until_ns > now_ns) continue;
    host->ejected = false;
    // A fresh start: failures counted while it was out (panic routing) must not eject it again
    // on its first error. `ejections` stays, so a relapse is ejected for longer.
    host->consecutive_5xx = 0;
    host->consecutive_gateway = 0;
    changed = true;
  }

  const int64_t interval_ns = IntervalNs(config_);
  if (!interval_started_) {
    interval_started_ = true;
    next_interval_ns_ = SaturatingAdd(now_ns, interval_ns);
    return changed;
  }
  if (now_ns < next_interval_ns_) return changed;

  // The interval that ends now began one interval before its scheduled end. If ticks were late
  // and whole intervals went by, they are run as one (their counters were never reset), and the
  // schedule skips to the next boundary after now rather than running the missed ones.
  const int64_t interval_start_ns = next_interval_ns_ - interval_ns;
  const uint64_t late = static_cast<uint64_t>(now_ns) - static_cast<uint64_t>(next_interval_ns_);
  const uint64_t skipped = late / static_cast<uint64_t>(interval_ns) + 1;
  next_interval_ns_ = static_cast<int64_t>(static_cast<uint64_t>(next_interval_ns_) +
                                           skipped * static_cast<uint64_t>(interval_ns));
  if (EndInterval(hosts, interval_start_ns, now_ns)) changed = true;
  return changed;
}

bool OutlierDetector::EndInterval(const std::vector<OutlierHostState*>& hosts,
                                  int64_t interval_start_ns, int64_t now_ns) {
  // Decay first, from what happened in the interval that just ended. `ejected_until_ns` is kept
  // after a host returns, so "out at some point in this interval" is ejected_until > start.
  for (OutlierHostState* host : hosts) {
    if (host == nullptr || host->ejected || host->ejections == 0) continue;
    if (host->ejected_until_ns > interval_start_ns) continue;
    if (host->interval_successes != host->interval_requests) continue;
    --host->ejections;
  }

  bool ejected_any = false;
  if (config_.success_rate_minimum_hosts > 0) {
    // A host needs at least one request for its rate to mean anything.
    const uint64_t volume = std::max<uint64_t>(1, config_.success_rate_request_volume);
    std::vector<std::pair<double, OutlierHostState*>> rates;  // success rate, host
    for (OutlierHostState* host : hosts) {
      if (host == nullptr || host->interval_requests < volume) continue;
      rates.emplace_back(static_cast<double>(host->interval_successes) /
                             static_cast<double>(host->interval_requests),
                         host);
    }
    if (!rates.empty() && rates.size() >= config_.success_rate_minimum_hosts) {
      double mean = 0;
      for (const auto& [rate, host] : rates) mean += rate;
      mean /= static_cast<double>(rates.size());
      double variance = 0;
      for (const auto& [rate, host] : rates) variance += (rate - mean) * (rate - mean);
      variance /= static_cast<double>(rates.size());
      const double threshold =
          mean - std::sqrt(variance) * (config_.success_rate_stdev_factor / 1000.0);
      // Worst first, so that when max_ejection_percent allows only some, those are the worst.
      std::stable_sort(rates.begin(), rates.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [rate, host] : rates) {
        // The tolerance keeps equal rates (stdev 0 up to rounding) from ejecting one another.
        if (rate >= threshold - 1e-12) break;
        if (Eject(host, hosts, now_ns)) ejected_any = true;
      }
    }
  }

  for (OutlierHostState* host : hosts) {
    if (host == nullptr) continue;
    host->interval_requests = 0;
    host->interval_successes = 0;
  }
  return ejected_any;
}

}  // namespace outrigger::proxy
