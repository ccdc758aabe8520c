// Upstream clusters as one worker sees them: the hosts of each cluster, the load balancer's state
// and a keep-alive connection pool per host. Owned by one worker thread; never locked.
// The worker calls Update() with every new snapshot; requests then look clusters up by name.
#ifndef OUTRIGGER_PROXY_UPSTREAM_CLUSTER_MANAGER_H_
#define OUTRIGGER_PROXY_UPSTREAM_CLUSTER_MANAGER_H_

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/container/flat_hash_map.h"
#include "proxy/config/snapshot.h"
#include "proxy/server/stats.h"

namespace outrigger::proxy {

using SteadyTime = std::chrono::steady_clock::time_point;

struct HostPool;

// One TCP connection to an upstream host, with its read buffer. Pooled while idle.
struct UpstreamConnection {
  UpstreamConnection(const boost::asio::any_io_executor& ex, std::shared_ptr<HostPool> host);
  ~UpstreamConnection();

  boost::asio::ip::tcp::socket socket;
  boost::beast::flat_buffer in;
  std::shared_ptr<HostPool> host;
  uint64_t requests = 0;
  SteadyTime idle_since;
  bool counted = false;  // counted in cx_active
};

struct HostPool {
  Address address;
  std::string address_text;
  boost::asio::ip::tcp::endpoint endpoint;
  uint32_t weight = 1;
  int64_t current_weight = 0;  // smooth weighted round robin state
  std::vector<std::unique_ptr<UpstreamConnection>> idle;  // most recently used last
  ClusterStats* stats = nullptr;
  std::chrono::nanoseconds idle_timeout{};
  absl::Duration connect_timeout;
  uint32_t max_idle = 0;
  bool retired = false;  // no longer in the cluster: connections are closed on release

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

  // Smooth weighted round robin (as nginx): even spread, weights honoured over any window.
  // Requests keep the chosen HostPool (shared), never the ClusterState: a new snapshot may
  // replace the ClusterState while a request is in flight. Call only when !empty().
  const std::shared_ptr<HostPool>& Pick();
  void CloseIdleOlderThan(SteadyTime cutoff);

 private:
  friend class ClusterManager;
  std::shared_ptr<const ClusterConfig> config_;
  std::vector<std::shared_ptr<HostPool>> hosts_;
  ClusterStats* stats_ = nullptr;
};

class ClusterManager {
 public:
  explicit ClusterManager(WorkerStats* stats) : stats_(stats) {}
  // Adopts the clusters of `snapshot`; pools of hosts that stay are kept.
  void Update(const Snapshot& snapshot);
  ClusterState* Find(absl::string_view name);
  // Closes pooled connections idle longer than their cluster's idle_timeout.
  void SweepIdle(SteadyTime now);
  void CloseAllIdle();

 private:
  WorkerStats* stats_;
  absl::flat_hash_map<std::string, std::unique_ptr<ClusterState>> clusters_;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_UPSTREAM_CLUSTER_MANAGER_H_
