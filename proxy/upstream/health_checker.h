// Active health checking: for every host of every cluster that has a health_check, GET its path
// every interval (HTTP/1.1, a fresh connection each time, within the timeout) and count passes
// and failures in a row. A host turns unhealthy after unhealthy_threshold failures and healthy
// again after healthy_threshold passes; each change is reported once through the callback
// (which the proxy posts to every worker). Runs on the main thread's io_context, so each host
// is checked once per proxy, not once per worker. Hosts start healthy: a new proxy or endpoint
// takes traffic at once, and the panic threshold covers a cluster whose checks all fail.
#ifndef OUTRIGGER_PROXY_UPSTREAM_HEALTH_CHECKER_H_
#define OUTRIGGER_PROXY_UPSTREAM_HEALTH_CHECKER_H_

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "proxy/config/snapshot.h"

namespace outrigger::proxy {

class HealthChecker {
 public:
  using OnChange =
      std::function<void(const std::string& cluster, const Address& host, bool failed)>;
  HealthChecker(boost::asio::io_context& ioc, OnChange on_change);
  ~HealthChecker();

  // Starts checking hosts that appeared, stops those gone, adopts changed settings.
  void Update(const Snapshot& snapshot);
  void Stop();

  struct Target;

 private:
  boost::asio::io_context& ioc_;
  OnChange on_change_;
  absl::flat_hash_map<std::string, std::shared_ptr<Target>> targets_;  // "cluster|host"
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_UPSTREAM_HEALTH_CHECKER_H_
