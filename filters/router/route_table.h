// The route table: which cluster a request goes to, chosen by its authority (virtual host) and
// path (route), with weighted clusters for canary splits. Built once from a validated
// RouteConfiguration; immutable and shared by every worker afterwards.
#ifndef OUTRIGGER_FILTERS_ROUTER_ROUTE_TABLE_H_
#define OUTRIGGER_FILTERS_ROUTER_ROUTE_TABLE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filters/router/route_policies.h"

namespace outrigger::v1 {
class RouteConfiguration;
}

namespace re2 {
class RE2;
}

namespace outrigger::router {

struct WeightedCluster {
  std::string name;
  uint32_t weight = 1;
};

// A header or query parameter condition.
struct ValueMatch {
  std::string name;
  std::string exact;
  std::shared_ptr<const re2::RE2> regex;  // set: match the whole value against it (RE2)
  bool Matches(absl::string_view value) const;
};

struct HeaderEdit {
  std::string name;
  std::string value;
};

// What the request looks like to route matching. `header` finds a header's first value.
struct RequestView {
  absl::string_view authority;
  absl::string_view path;  // with the query string
  absl::string_view method;
  absl::FunctionRef<std::optional<absl::string_view>(absl::string_view)> header;
};

struct Redirect {
  std::string scheme;
  std::string host;
  uint32_t port = 0;
  std::string path;
  std::string prefix_rewrite;
  int status = 301;
};

struct Route {
  enum class PathMatch { kPrefix, kExact, kRegex, kSegmentPrefix };

  std::string name;
  std::string virtual_host;  // the name of the virtual host it belongs to (metrics: the service)
  PathMatch path_match = PathMatch::kPrefix;
  std::string path;  // the prefix, the exact path or the regex's text
  std::shared_ptr<const re2::RE2> path_regex;
  std::vector<ValueMatch> headers;
  std::vector<ValueMatch> query_parameters;
  std::string method;
  // Action: forward to clusters, or redirect.
  std::vector<WeightedCluster> clusters;
  uint64_t total_weight = 0;
  std::optional<Redirect> redirect;
  absl::Duration timeout = absl::Seconds(15);  // zero: no timeout
  bool rewrite_prefix = false;
  std::string prefix_rewrite;
  std::string path_rewrite;  // the whole path; "" keeps it
  std::string host_rewrite;  // "" keeps the Host
  std::vector<HeaderEdit> set_headers;
  std::vector<HeaderEdit> add_headers;
  std::vector<std::string> remove_headers;
  RetryPolicy retry;
  std::optional<FaultConfig> fault;
  std::vector<MirrorPolicy> mirrors;
  std::optional<RateLimitConfig> rate_limit;

  bool Matches(absl::string_view path) const;
  bool Matches(const RequestView& request) const;
  bool edits_headers() const {
    return !set_headers.empty() || !add_headers.empty() || !remove_headers.empty() ||
           !host_rewrite.empty();
  }
  // The Location of a redirect for this request.
  std::string RedirectLocation(const RequestView& request) const;
  // `random` is any uniformly drawn number; one cluster is picked in proportion to the weights.
  const std::string& PickCluster(uint64_t random) const;
  // The path to send upstream (after prefix_rewrite).
  std::string RewritePath(absl::string_view path) const;
};

struct VirtualHost {
  std::string name;
  std::vector<std::string> domains;
  std::vector<Route> routes;
};

class RouteTable {
 public:
  // Validates `config`; `cluster_exists` tells which cluster names may be routed to. Errors start
  // with the field's path ("virtual_hosts[0].routes[1].route.cluster: unknown cluster 'x'").
  static absl::StatusOr<std::shared_ptr<const RouteTable>> FromProto(
      const v1::RouteConfiguration& config,
      const std::function<bool(absl::string_view)>& cluster_exists);

  // A table with one virtual host per cluster, matching the cluster's name as authority.
  static std::shared_ptr<const RouteTable> ForClusters(std::string name,
                                                       const std::vector<std::string>& clusters);

  const std::string& name() const { return name_; }
  const std::vector<VirtualHost>& virtual_hosts() const { return vhosts_; }

  // The virtual host for `authority` ("host" or "host:port", any case), or nullptr.
  const VirtualHost* FindVirtualHost(absl::string_view authority) const;
  // The first route of the virtual host that matches `path` (without query), or nullptr.
  const Route* Match(absl::string_view authority, absl::string_view path) const;
  // The first route whose every condition holds for `request`, or nullptr.
  const Route* Match(const RequestView& request) const;

 private:
  absl::Status Index();

  std::string name_;
  std::vector<VirtualHost> vhosts_;
  absl::flat_hash_map<std::string, size_t> exact_;       // "host" and "host:port"
  std::vector<std::pair<std::string, size_t>> suffixes_;  // "*.example.com" -> ".example.com"
  int default_ = -1;                                      // "*"
};

}  // namespace outrigger::router

#endif  // OUTRIGGER_FILTERS_ROUTER_ROUTE_TABLE_H_
