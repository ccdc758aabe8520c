// The main thread of outrigger-proxy: binds listener sockets (one SO_REUSEPORT socket per worker),
// starts the workers, publishes config snapshots to them, runs the admin server and signal
// handling, and drains on SIGTERM: stop accepting, let requests in flight finish within the drain
// timeout, then stop.
#ifndef OUTRIGGER_PROXY_SERVER_PROXY_SERVER_H_
#define OUTRIGGER_PROXY_SERVER_PROXY_SERVER_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "outrigger/v1/config.pb.h"
#include "proxy/config/snapshot.h"
#include "proxy/server/stats.h"
#include "proxy/server/worker.h"
#include "proxy/upstream/health_checker.h"
#include "proxy/xds/identity_client.h"

namespace outrigger::v1 {
class DiscoveryResponse;
class Node;
}  // namespace outrigger::v1

namespace outrigger::proxy {

class AdminServer;
class AdsClient;
class SpanExporter;

struct ServerOptions {
  int concurrency = 1;
  absl::Duration drain_timeout = absl::Seconds(5);
  TelemetryOptions telemetry;
  std::string admin_address;  // empty: no admin server
};

class ProxyServer {
 public:
  explicit ProxyServer(ServerOptions options);
  ~ProxyServer();

  // Binds every listener of `snapshot` and the admin address, then starts the workers.
  absl::Status Start(std::shared_ptr<const Snapshot> snapshot);
  // Runs the main loop until the drain finishes. Returns the process exit code.
  int Run();

  // Follows the control plane at `server` from now on. `local` holds the resources that come from
  // flags and --config (listeners, the local app); the control plane adds clusters, endpoints and
  // routes. Until every type has arrived once, /ready answers 503. Call after Start().
  // With `bundle_pem` (the mesh's roots) and a join token, the proxy first gets its certificate
  // from the mesh CA and then follows the control plane over mTLS; without them, plaintext.
  void EnableDiscovery(std::string server, v1::Node node, v1::Bootstrap local,
                       std::string bundle_pem = {}, std::string join_token = {});
  // The workload certificate, when the mesh CA issued one (for /metrics).
  const IdentityClient* identity() const { return identity_.get(); }
  // False while following a control plane that has not yet delivered every resource type.
  bool ready() const { return !draining_ && ready_; }
  // "inbound" -> "127.0.0.1:15006": where each listener was bound (port 0 resolved).
  const std::map<std::string, std::string>& bound_addresses() const { return bound_; }
  struct DiscoveryStats {
    bool enabled = false;
    bool connected = false;
    uint64_t updates = 0;
    uint64_t rejected = 0;
    std::map<std::string, std::string> versions;  // type_url -> accepted version
    std::string last_error;
    absl::Time last_rejected_at = absl::InfinitePast();
  };
  const DiscoveryStats& discovery_stats() const { return discovery_; }

  void BeginDrain(absl::string_view why);
  bool draining() const { return draining_; }
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_; }
  // Copies every worker's stats on its own thread and sums them.
  boost::asio::awaitable<WorkerStats> CollectStats();
  // Every worker's view of every upstream host (health, ejection, load), for /clusters.
  boost::asio::awaitable<std::vector<std::vector<HostStatus>>> CollectHostStatus();
  boost::asio::io_context& io_context() { return ioc_; }
  // The trace exporter, when --tracing-endpoint is set (for /metrics).
  const SpanExporter* span_exporter() const { return exporter_.get(); }

 private:
  boost::asio::awaitable<void> WaitForDrain();
  void OnDiscoveryResponse(const v1::DiscoveryResponse& response);
  void Publish(std::shared_ptr<const Snapshot> snapshot);
  void StartAds(const std::string& server, v1::Node node,
                std::shared_ptr<grpc::ChannelCredentials> credentials);

  ServerOptions options_;
  boost::asio::io_context ioc_{1};
  boost::asio::signal_set signals_{ioc_};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<HealthChecker> health_checker_;
  std::unique_ptr<SpanExporter> exporter_;
  bool draining_ = false;
  bool ready_ = true;
  std::map<std::string, std::string> bound_;
  // Following a control plane:
  std::unique_ptr<AdsClient> ads_;
  std::unique_ptr<IdentityClient> identity_;
  v1::Bootstrap local_;
  v1::Bootstrap accepted_;  // the clusters, endpoints and routes last accepted from it
  uint64_t next_version_ = 2;
  DiscoveryStats discovery_;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_PROXY_SERVER_H_
