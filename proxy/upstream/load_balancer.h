// Load balancers: which host of a cluster gets the next request. One instance per cluster per
// worker, so no state is shared and nothing is locked. The cluster manager hands a balancer the
// hosts that are eligible now (healthy, or all of them in panic mode) and calls Rebuild() again
// whenever that set or a weight changes; Pick() then runs per request.
//
// Implementations: weighted round robin (smooth, as nginx), least-request with two random choices,
// consistent hashing (ring hash, Maglev), peak-EWMA (linkerd2-proxy's latency-aware balancer)
// and weighted random.
#ifndef OUTRIGGER_PROXY_UPSTREAM_LOAD_BALANCER_H_
#define OUTRIGGER_PROXY_UPSTREAM_LOAD_BALANCER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace outrigger::proxy::lb {

// Peak-EWMA round-trip estimate, in nanoseconds of a steady clock (linkerd2-proxy, after
// Finagle): a sample above the estimate replaces it at once (the peak); lower samples pull it
// down with weight 1 - exp(-elapsed / decay).
class PeakEwma {
 public:
  // `default_rtt_ns` is the estimate before any sample (a new host looks neither fast nor slow).
  explicit PeakEwma(int64_t default_rtt_ns = 30'000'000) : estimate_ns_(default_rtt_ns) {}
  void Observe(int64_t rtt_ns, int64_t now_ns, int64_t decay_ns);
  // The host joined at `now_ns`: its default estimate fades from then on (as tower's PeakEwma),
  // so a host that never got a request is tried eventually instead of being starved for good.
  void Start(int64_t now_ns) {
    stamp_ns_ = now_ns;
    started_ = true;
  }
  // The estimate decayed towards zero for the time without samples ("now").
  double Estimate(int64_t now_ns, int64_t decay_ns) const;

 private:
  double estimate_ns_;
  int64_t stamp_ns_ = 0;  // when estimate_ns_ was last set by a sample
  bool sampled_ = false;  // until the first sample the default estimate does not decay...
  bool started_ = false;  // ...unless Start() said when the host joined
};

// What a balancer reads about a host. Owned by the host (HostPool); outlives Rebuild() to the
// next Rebuild().
struct LbHost {
  std::string key;            // stable identity, "IP:PORT": what consistent hashing hashes
  uint32_t weight = 1;        // >= 1
  uint32_t active_requests = 0;  // requests in flight to this host from this worker
  PeakEwma ewma;
  int64_t current_weight = 0;  // smooth weighted round robin state, used by that balancer only
};

struct PickContext {
  // Consistent hashing: the request's hash (from the cluster's hash policy), if it has one.
  std::optional<uint64_t> hash;
  // Fresh uniformly random bits for this pick.
  uint64_t random = 0;
  // A host to avoid when another is available (a retry goes to a different host); may be null.
  const LbHost* avoid = nullptr;
  int64_t now_ns = 0;  // for peak-EWMA
};

enum class Policy { kRoundRobin, kLeastRequest, kRingHash, kMaglev, kPeakEwma, kRandom };

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // The eligible hosts, in a stable order. Never empty when Pick() is called after it.
  virtual void Rebuild(const std::vector<LbHost*>& hosts) = 0;
  // The host for a request (one of the hosts of the last Rebuild), or nullptr if there are none.
  virtual LbHost* Pick(const PickContext& ctx) = 0;
};

// `decay_ns` is the peak-EWMA decay time (ignored by the others).
std::unique_ptr<LoadBalancer> MakeLoadBalancer(Policy policy, int64_t decay_ns = 10'000'000'000);

// 64-bit hash used for hash policies and ring positions (xxhash-quality, stable across runs).
uint64_t HashKey(const char* data, size_t size);

}  // namespace outrigger::proxy::lb

#endif  // OUTRIGGER_PROXY_UPSTREAM_LOAD_BALANCER_H_
