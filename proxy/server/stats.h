// Per-worker counters and histograms. Each worker owns a WorkerStats and updates it without locks
// or atomics; /metrics asks every worker for a copy on its own thread and sums the copies.
#ifndef OUTRIGGER_PROXY_SERVER_STATS_H_
#define OUTRIGGER_PROXY_SERVER_STATS_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"
#include "xds/common/histogram.h"

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

// The Istio-style labels of one request series. Values are short, sanitized identifiers (service
// names, versions); never paths or other user data, so the number of series stays bounded.
struct RequestLabels {
  std::string source_workload;
  std::string source_version;
  std::string destination_service;
  std::string destination_version;
  uint16_t response_code = 0;
  uint16_t response_flags = 0;
  bool mutual_tls = false;
  std::string grpc_status;  // gRPC calls: the grpc-status of the answer; else ""
};

// Requests of one label set: how many, how long, how large.
struct RequestSeries {
  RequestLabels labels;
  uint64_t requests = 0;
  Histogram duration{Histogram::Unit::kMilliseconds};
  Histogram request_bytes{Histogram::Unit::kBytes};
  Histogram response_bytes{Histogram::Unit::kBytes};
  void Merge(const RequestSeries& other);
};

// Raw TCP relays of one label set (Istio's istio_tcp_* metrics): response_code is 0, and the
// flags are those known when the upstream connection was made or refused (UF, UH, UO).
struct TcpSeries {
  RequestLabels labels;
  uint64_t relays = 0;
  uint64_t received_bytes = 0;  // from clients
  uint64_t sent_bytes = 0;      // to clients
  void Merge(const TcpSeries& other);
};

struct ListenerStats {
  // At most this many label sets per listener per worker; requests beyond it are counted in a
  // series whose source and destination labels read "overflow".
  static constexpr size_t kMaxSeries = 1024;

  std::string reporter;  // "source" (outbound listener) or "destination" (inbound)
  // Keyed by the labels joined (see RecordRequest).
  absl::node_hash_map<std::string, RequestSeries> series;
  uint64_t series_overflow = 0;  // requests counted in the overflow series
  uint64_t cx_total = 0;
  uint64_t cx_closed = 0;
  uint64_t cx_mutual_tls = 0;  // of cx_total, connections that came with a mesh certificate
  // Raw TCP (protocol TCP, or DETECT finding something else than HTTP), by label set (bounded
  // like `series`).
  absl::node_hash_map<std::string, TcpSeries> tcp_series;
  uint64_t tcp_relay_failures = 0;  // relays that found no upstream (UH, UO, UF)
  int64_t cx_active = 0;
  uint64_t rq_active = 0;
  // Inbound mTLS.
  uint64_t tls_handshakes = 0;
  uint64_t tls_handshake_errors = 0;      // failed handshakes (no or bad certificate, ...)
  uint64_t tls_plaintext_refused = 0;     // STRICT: plaintext, or TLS without a certificate
  uint64_t authz_denied = 0;
  uint64_t authz_dry_run_denied = 0;      // would have been denied by a dry-run policy
  // Counts one finished request. `key_scratch` is the caller's reusable buffer.
  struct LabelView {
    absl::string_view source_workload, source_version, destination_service, destination_version;
    uint16_t response_code = 0;
    uint16_t response_flags = 0;
    bool mutual_tls = false;
    absl::string_view grpc_status;
  };
  void RecordRequest(const LabelView& labels, double duration_ms, uint64_t request_bytes,
                     uint64_t response_bytes, std::string* key_scratch);
  // The series a TCP relay with these labels counts in (stable: series are never removed).
  TcpSeries& TcpSeriesFor(const LabelView& labels, std::string* key_scratch);
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
  // Tracing: spans recorded, and spans dropped because the worker's buffer was full.
  uint64_t spans_recorded = 0;
  uint64_t spans_dropped = 0;

  void Merge(const WorkerStats& other);
  std::string RenderPrometheus() const;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_STATS_H_
