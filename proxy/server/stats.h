// Per-worker counters and histograms. Each worker owns a WorkerStats and updates it without locks
// or atomics; /metrics asks every worker for a copy on its own thread and sums the copies.
#ifndef OUTRIGGER_PROXY_SERVER_STATS_H_
#define OUTRIGGER_PROXY_SERVER_STATS_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/container/node_hash_map.h"

namespace outrigger::proxy {

// Why a request did not get an ordinary upstream answer (Envoy's response flags).
enum ResponseFlag : uint16_t {
  kNoRoute = 1 << 0,                  // NR
  kNoHealthyUpstream = 1 << 1,        // UH
  kUpstreamConnectFailure = 1 << 2,   // UF
  kUpstreamTermination = 1 << 3,      // UC
  kUpstreamTimeout = 1 << 4,          // UT
  kDownstreamTermination = 1 << 5,    // DC
  kDownstreamProtocolError = 1 << 6,  // DPE
  kStreamIdleTimeout = 1 << 7,        // SI
  kUpstreamProtocolError = 1 << 8,    // UPE
};
// "-" for none, else short names joined by ',' ("UF,UC").
std::string ResponseFlagsString(uint16_t flags);

class Histogram {
 public:
  static constexpr std::array<double, 17> kBoundsMs = {
      0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000};
  void Record(double ms);
  void Merge(const Histogram& other);
  // Appends `name`_bucket/_sum/_count lines with `labels` ("a=\"b\"").
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::array<uint64_t, kBoundsMs.size() + 1> counts_{};
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct ListenerStats {
  std::string direction;
  // (status << 16 | flags) -> count
  absl::node_hash_map<uint32_t, uint64_t> requests;
  Histogram duration;
  uint64_t cx_total = 0;
  int64_t cx_active = 0;
  uint64_t rq_active = 0;
  void Merge(const ListenerStats& other);
};

struct ClusterStats {
  uint64_t cx_total = 0;
  int64_t cx_active = 0;
  uint64_t cx_connect_fail = 0;
  uint64_t rq_total = 0;
  uint64_t rq_retry_stale = 0;  // requests replayed after a pooled connection turned out closed
  void Merge(const ClusterStats& other);
};

struct WorkerStats {
  absl::node_hash_map<std::string, ListenerStats> listeners;
  absl::node_hash_map<std::string, ClusterStats> clusters;

  void Merge(const WorkerStats& other);
  std::string RenderPrometheus() const;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_STATS_H_
