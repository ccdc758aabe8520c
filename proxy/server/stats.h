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
  kUpstreamOverflow = 1 << 9,         // UO: a circuit breaker was full
  kRateLimited = 1 << 10,             // RL: the local rate limit's bucket was empty
  kFaultAbort = 1 << 11,              // FI: fault injection answered
  kFaultDelay = 1 << 12,              // DI: fault injection delayed the request
  kRetryLimitExceeded = 1 << 13,      // URX: retries (or the retry budget) ran out
  kRbacDenied = 1 << 14,              // RBAC: denied by authorization policy
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
  // Inbound mTLS.
  uint64_t tls_handshakes = 0;
  uint64_t tls_handshake_errors = 0;      // failed handshakes (no or bad certificate, ...)
  uint64_t tls_plaintext_refused = 0;     // STRICT: plaintext, or TLS without a certificate
  uint64_t authz_denied = 0;
  uint64_t authz_dry_run_denied = 0;      // would have been denied by a dry-run policy
  void Merge(const ListenerStats& other);
};

struct ClusterStats {
  uint64_t cx_total = 0;
  int64_t cx_active = 0;
  uint64_t cx_connect_fail = 0;
  uint64_t tls_handshakes = 0;        // mTLS to mesh peers
  uint64_t tls_resumed = 0;           // of those, resumed sessions
  uint64_t tls_handshake_errors = 0;  // failed, or the peer was not the expected identity
  uint64_t rq_total = 0;
  uint64_t rq_retry_stale = 0;  // requests replayed after a pooled connection turned out closed
  // Circuit-breaker gauges: what this worker has in flight (summed over workers on scrape).
  int64_t rq_active = 0;
  int64_t rq_pending = 0;  // waiting for a new connection to open
  int64_t rq_retry_active = 0;
  uint64_t rq_retry = 0;                  // retries sent
  uint64_t rq_retry_success = 0;          // requests that succeeded on a retry
  uint64_t rq_retry_overflow = 0;         // retries not sent: max_retries breaker
  uint64_t rq_retry_budget_exhausted = 0;  // retries not sent: retry budget
  uint64_t rq_retry_limit_exceeded = 0;   // retriable failures with no retries left
  uint64_t rq_overflow = 0;               // requests refused by a breaker (503 UO)
  uint64_t rq_per_try_timeout = 0;
  uint64_t rq_mirror = 0;                 // mirror copies sent
  uint64_t rq_mirror_dropped = 0;         // mirror copies not sent or failed
  uint64_t outlier_ejections = 0;
  uint64_t panic = 0;                     // picks made in panic mode
  // Host counts as this worker sees them (max over workers on scrape: they share hosts).
  int64_t hosts = 0;
  int64_t hosts_ejected = 0;
  int64_t hosts_unhealthy = 0;  // failing active health checks
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
