// Upstream clusters as one worker sees them: the hosts of each cluster with their keep-alive
// pools, health (active checks and outlier ejection), the load balancer, circuit-breaker limits
// and the retry budget. Owned by one worker thread; never locked. The worker calls Update() with
// every new snapshot; hosts that stay keep their pools, health and ejection state.
#ifndef OUTRIGGER_PROXY_UPSTREAM_CLUSTER_MANAGER_H_
#define OUTRIGGER_PROXY_UPSTREAM_CLUSTER_MANAGER_H_

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/container/flat_hash_map.h"
#include "filters/retry/retry_budget.h"
#include "proxy/net/transport.h"
#include "proxy/server/tls_state.h"
#include "proxy/config/snapshot.h"
#include "proxy/server/stats.h"
#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/outlier_detector.h"

typedef struct ssl_session_st SSL_SESSION;

namespace outrigger::proxy {

using SteadyTime = std::chrono::steady_clock::time_point;

struct HostPool;
class H2Upstream;

// One TCP connection to an upstream host, with its read buffer. Pooled while idle.
struct UpstreamConnection {
  UpstreamConnection(const boost::asio::any_io_executor& ex, std::shared_ptr<HostPool> host);
  ~UpstreamConnection();

  Transport stream;  // TCP, or TLS to a mesh peer
  boost::beast::flat_buffer in;
  std::shared_ptr<HostPool> host;
  uint64_t requests = 0;
  SteadyTime idle_since;
  bool counted = false;  // counted in cx_active
};

// One upstream host of one cluster on one worker. The load balancer sees it as an LbHost.
struct HostPool : lb::LbHost, TlsSessionSink, std::enable_shared_from_this<HostPool> {
  Address address;
  std::string address_text;
  boost::asio::ip::tcp::endpoint endpoint;
  std::vector<std::unique_ptr<UpstreamConnection>> idle;  // most recently used last
  ClusterStats* stats = nullptr;
  std::chrono::nanoseconds idle_timeout{};
  absl::Duration connect_timeout;
  uint32_t max_idle = 0;
  bool retired = false;  // no longer in the cluster: connections are closed on release
  OutlierHostState outlier;
  bool health_check_failed = false;  // set by the active health checker
  std::string spiffe_id;             // a mesh peer: connect with mTLS and expect this identity
  std::string version;               // its `version` label (metrics: destination_version)
  // TLS sessions with this host to resume new connections with (cheap repeat connects). TLS 1.3
  // tickets are single-use: each new connection takes one, each finished exchange adds its
  // connection's newest; a few are kept so that parallel connects all resume.
  std::vector<std::shared_ptr<SSL_SESSION>> tls_sessions;
  // The multiplexed HTTP/2 connection to this host, when streams use HTTP/2 (h2_upstream.h).
  std::shared_ptr<H2Upstream> h2;

  bool eligible() const { return !outlier.ejected && !health_check_failed; }
  // A new TLS session ticket from this host (kept up to a few, each used once).
  void Add(SSL_SESSION* session) override;
  // A pooled connection that is still open, or nullptr.
  std::unique_ptr<UpstreamConnection> TakeIdle(SteadyTime now);
  // Returns a connection whose last exchange ended cleanly to its host's pool.
  static void Release(std::unique_ptr<UpstreamConnection> conn, SteadyTime now);
};

class ClusterState {
 public:
  const ClusterConfig& config() const { return *config_; }
  bool empty() const { return hosts_.empty(); }
  ClusterStats& stats() { return *stats_; }
  const std::vector<std::shared_ptr<HostPool>>& hosts() const { return hosts_; }
  // This worker's share of the cluster's circuit-breaker limits.
  const CircuitBreakerConfig& limits() const { return limits_; }
  retry::RetryBudget& retry_budget() { return *budget_; }

  // The host for a request: the balancer's pick among eligible hosts (healthy and not ejected),
  // or among all hosts in panic mode (fewer than healthy_panic_threshold% eligible). Requests
  // keep the HostPool (shared), never the ClusterState: a new snapshot may replace the
  // ClusterState while a request is in flight. Call only when !empty().
  std::shared_ptr<HostPool> Pick(lb::PickContext ctx);
  // Feeds outlier detection with the outcome of one try at `host`.
  void RecordOutcome(HostPool* host, Outcome outcome, int64_t now_ns);
  void CloseIdleOlderThan(SteadyTime cutoff);

 private:
  friend class ClusterManager;
  // Recomputes the eligible hosts and rebuilds the balancer (after health or ejection changes).
  void Refresh();
  void Tick(int64_t now_ns);

  std::shared_ptr<const ClusterConfig> config_;
  std::vector<std::shared_ptr<HostPool>> hosts_;
  std::vector<OutlierHostState*> outlier_states_;  // of hosts_, for the detector
  ClusterStats* stats_ = nullptr;
  CircuitBreakerConfig limits_;
  std::unique_ptr<lb::LoadBalancer> lb_;
  bool panic_ = false;
  std::optional<OutlierDetector> outlier_;
  std::shared_ptr<retry::RetryBudget> budget_;  // survives config updates of the cluster
};

// A host's state as /clusters shows it.
struct HostStatus {
  std::string cluster;
  std::string address;
  uint32_t weight = 1;
  bool health_check_failed = false;
  bool ejected = false;
  uint32_t ejections = 0;
  uint32_t active_requests = 0;
  size_t idle_connections = 0;
  double ewma_ms = 0;
};

class ClusterManager {
 public:
  // `workers`: how many workers share the circuit-breaker limits and retry-budget floors.
  ClusterManager(WorkerStats* stats, int workers) : stats_(stats), workers_(workers) {}
  // Adopts the clusters of `snapshot`; hosts that stay keep their pools and health.
  void Update(const Snapshot& snapshot);
  ClusterState* Find(absl::string_view name);
  // Active health check verdict for a host (from the main thread's health checker).
  void SetHealthCheckFailed(absl::string_view cluster, const Address& host, bool failed);
  // Periodic work: closes pooled connections idle longer than their cluster's idle_timeout,
  // ends outlier ejections that are over.
  void Tick(SteadyTime now, bool sweep_idle);
  void CloseAllIdle();
  std::vector<HostStatus> Status(SteadyTime now) const;

 private:
  WorkerStats* stats_;
  int workers_;
  absl::flat_hash_map<std::string, std::unique_ptr<ClusterState>> clusters_;
  // Health-check verdicts by "cluster|address", so hosts added later start with them.
  absl::flat_hash_map<std::string, bool> health_failed_;
};

int64_t ToNanos(SteadyTime t);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_UPSTREAM_CLUSTER_MANAGER_H_
