// The main thread of outrigger-proxy: binds listener sockets (one SO_REUSEPORT socket per worker),
// starts the workers, publishes config snapshots to them, runs the admin server and signal
// handling, and drains on SIGTERM: stop accepting, let requests in flight finish within the drain
// timeout, then stop.
#ifndef OUTRIGGER_PROXY_SERVER_PROXY_SERVER_H_
#define OUTRIGGER_PROXY_SERVER_PROXY_SERVER_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proxy/config/snapshot.h"
#include "proxy/server/stats.h"
#include "proxy/server/worker.h"

namespace outrigger::proxy {

class AdminServer;

struct ServerOptions {
  int concurrency = 1;
  absl::Duration drain_timeout = absl::Seconds(5);
  bool access_log = true;
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

  void BeginDrain(absl::string_view why);
  bool draining() const { return draining_; }
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_; }
  // Copies every worker's stats on its own thread and sums them.
  boost::asio::awaitable<WorkerStats> CollectStats();
  boost::asio::io_context& io_context() { return ioc_; }

 private:
  boost::asio::awaitable<void> WaitForDrain();

  ServerOptions options_;
  boost::asio::io_context ioc_{1};
  boost::asio::signal_set signals_{ioc_};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::unique_ptr<AdminServer> admin_;
  bool draining_ = false;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_PROXY_SERVER_H_
