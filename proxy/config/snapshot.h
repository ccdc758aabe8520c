// The proxy's configuration as plain immutable C++ objects: what workers read on the request path.
// Built once from protobuf resources (Bootstrap) on the main thread, validated whole, then shared
// read-only with every worker as std::shared_ptr<const Snapshot>. A request keeps the snapshot it
// started with until it ends.
#ifndef OUTRIGGER_PROXY_CONFIG_SNAPSHOT_H_
#define OUTRIGGER_PROXY_CONFIG_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filters/authz/authorization.h"
#include "filters/router/route_table.h"
#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/outlier_detector.h"

namespace outrigger::v1 {
class Bootstrap;
}

namespace outrigger::proxy {

// A numeric socket address, validated.
struct Address {
  std::string ip;  // "127.0.0.1" or "::1"
  uint16_t port = 0;
  std::string ToString() const;  // "127.0.0.1:80", "[::1]:80"
  bool operator==(const Address&) const = default;
};
// Parses "IP:PORT", "[IPv6]:PORT" or "localhost:PORT".
absl::StatusOr<Address> ParseAddress(absl::string_view text);

struct EndpointConfig {
  Address address;
  std::string spiffe_id;  // a mesh peer: mTLS, and its certificate must carry this ID
  uint32_t weight = 1;
  absl::flat_hash_map<std::string, std::string> labels;
};

struct HashPolicyConfig {
  enum class Kind { kHeader, kCookie, kSourceIp };
  Kind kind = Kind::kHeader;
  std::string name;  // header (lower case) or cookie name
};

// Limits for the whole cluster; each worker enforces its share (CircuitBreakers in config.proto).
struct CircuitBreakerConfig {
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
  uint32_t max_retries = 3;
};

struct HealthCheckConfig {
  std::string path;
  std::string host;  // Host header
  absl::Duration interval = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(1);
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 2;
  std::vector<uint32_t> expected_statuses;  // empty: 200-399
  bool Passes(int status) const;
  bool operator==(const HealthCheckConfig&) const = default;
};

struct RetryBudgetConfig {
  double percent = 20;
  double min_per_second = 10;
  absl::Duration ttl = absl::Seconds(10);
};

struct ClusterConfig {
  std::string name;
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration idle_timeout = absl::Seconds(4);
  uint32_t max_idle_per_host = 1024;  // as many as the max_connections breaker admits
  std::vector<EndpointConfig> endpoints;
  lb::Policy lb_policy = lb::Policy::kRoundRobin;
  std::vector<HashPolicyConfig> hash_policy;
  CircuitBreakerConfig breakers;
  std::optional<OutlierConfig> outlier;  // unset: no outlier detection
  std::optional<HealthCheckConfig> health_check;
  RetryBudgetConfig retry_budget;
  uint32_t healthy_panic_threshold = 50;  // percent; 0 disables panic mode
  absl::Duration ewma_decay = absl::Seconds(10);
  bool http2 = false;  // HTTP/2 to the hosts (for requests from HTTP/2 clients)
};

enum class Direction { kInbound, kOutbound };

// Inbound mTLS (MeshTLS): kAuto is PERMISSIVE once the proxy has a certificate.
enum class TlsMode { kAuto, kDisable, kPermissive, kStrict };

struct HttpOptions {
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration request_headers_timeout = absl::Seconds(10);
  absl::Duration stream_idle_timeout = absl::Seconds(300);
  uint32_t max_request_headers_bytes = 60 * 1024;
};

enum class ListenerProtocol { kHttp, kTcp, kDetect };

struct ListenerConfig {
  std::string name;
  ListenerProtocol protocol = ListenerProtocol::kHttp;
  absl::Duration detection_timeout = absl::Milliseconds(100);
  Address address;
  Direction direction = Direction::kOutbound;
  std::shared_ptr<const router::RouteTable> routes;  // set when routing by authority
  std::string cluster;                               // set when all traffic goes to one cluster
  HttpOptions http;
  std::optional<router::RateLimitConfig> rate_limit;  // every request of the listener
  TlsMode tls_mode = TlsMode::kAuto;                   // inbound listeners only
  std::shared_ptr<const authz::Authorizer> authz;      // inbound; null: no policy
  // Requests that match no route (listeners with one cluster) use this policy.
  router::RetryPolicy retry;
};

struct Snapshot {
  uint64_t version = 0;
  std::vector<ListenerConfig> listeners;
  absl::flat_hash_map<std::string, std::shared_ptr<const ClusterConfig>> clusters;
  std::string config_dump_json;  // the resources this snapshot came from, for /config_dump

  const ListenerConfig* FindListener(absl::string_view name) const;
  const ClusterConfig* FindCluster(absl::string_view name) const;
};

// Validates `bootstrap` whole and builds a snapshot. Errors start with the field's path:
// "clusters[1].endpoints[0].address: 'db:5432': 'db' is not an IP address ...".
// `lenient_references` (config from a control plane, as Envoy treats xDS): endpoints of an
// unknown cluster are dropped, routes may name clusters not known yet (such requests answer
// 503), and a listener whose route configuration has not arrived routes nothing (404), so the
// order in which resource types arrive can never wedge a proxy.
absl::StatusOr<std::shared_ptr<const Snapshot>> BuildSnapshot(const v1::Bootstrap& bootstrap,
                                                              uint64_t version,
                                                              bool lenient_references = false);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_CONFIG_SNAPSHOT_H_
