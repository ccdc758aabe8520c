// See route_table.h. Authority matching follows Envoy: exact "host:port", then exact "host",
// then the longest "*.suffix" wildcard, then "*".
#include "filters/router/route_table.h"

#include <algorithm>

#include "absl/strings/string_view.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::router {
namespace {

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// "Host:8080" -> ("host", ":8080"); IPv6 literals keep their brackets.
std::pair<std::string, absl::string_view> SplitAuthority(absl::string_view authority) {
  std::string lower = absl::AsciiStrToLower(authority);
  size_t colon = lower.rfind(':');
  size_t bracket = lower.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && bracket > colon)) {
    return {lower, {}};
  }
  return {lower, authority.substr(colon)};
}

}  // namespace

bool Route::Matches(absl::string_view p) const {
  return path_match == PathMatch::kExact ? p == path : absl::StartsWith(p, path);
}

const std::string& Route::PickCluster(uint64_t random) const {
  if (clusters.size() == 1) return clusters[0].name;
  uint64_t point = random % total_weight;
  for (const auto& c : clusters) {
    if (point < c.weight) return c.name;
    point -= c.weight;
  }
  return clusters.back().name;
}

std::string Route::RewritePath(absl::string_view p) const {
  if (!rewrite_prefix || path_match != PathMatch::kPrefix) return std::string(p);
  return absl::StrCat(prefix_rewrite, p.substr(path.size()));
}

absl::StatusOr<std::shared_ptr<const RouteTable>> RouteTable::FromProto(
    const v1::RouteConfiguration& config,
    const std::function<bool(absl::string_view)>& cluster_exists) {
  auto table = std::make_shared<RouteTable>();
  table->name_ = config.name();
  auto error = [&](absl::string_view field, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
  };
  for (int v = 0; v < config.virtual_hosts_size(); ++v) {
    const auto& vh = config.virtual_hosts(v);
    const std::string vpath = absl::StrCat("virtual_hosts[", v, "]");
    VirtualHost host;
    host.name = vh.name().empty() ? vpath : vh.name();
    if (vh.domains_size() == 0) return error(absl::StrCat(vpath, ".domains"), "must not be empty");
    for (int d = 0; d < vh.domains_size(); ++d) {
      std::string domain = absl::AsciiStrToLower(vh.domains(d));
      if (domain.empty()) {
        return error(absl::StrCat(vpath, ".domains[", d, "]"), "must not be empty");
      }
      if (domain.find('*') != std::string::npos && domain != "*" &&
          !(absl::StartsWith(domain, "*.") && domain.find('*', 1) == std::string::npos)) {
        return error(absl::StrCat(vpath, ".domains[", d, "]"),
                     absl::StrCat("'", domain, "': a wildcard must be '*' or '*.suffix'"));
      }
      host.domains.push_back(std::move(domain));
    }
    for (int r = 0; r < vh.routes_size(); ++r) {
      const auto& rp = vh.routes(r);
      const std::string rpath = absl::StrCat(vpath, ".routes[", r, "]");
      Route route;
      route.name = rp.name().empty() ? rpath : rp.name();
      switch (rp.match().path_specifier_case()) {
        case v1::RouteMatch::kPath:
          route.path_match = Route::PathMatch::kExact;
          route.path = rp.match().path();
          break;
        case v1::RouteMatch::kPrefix:
          route.path = rp.match().prefix();
          break;
        default:
          route.path = "/";  // no match given: everything
      }
      if (route.path.empty() || route.path[0] != '/') {
        return error(absl::StrCat(rpath, ".match"),
                     absl::StrCat("'", route.path, "': a path must start with '/'"));
      }
      const auto& action = rp.route();
      if (action.has_weighted_clusters()) {
        const auto& wc = action.weighted_clusters();
        if (wc.clusters_size() == 0) {
          return error(absl::StrCat(rpath, ".route.weighted_clusters.clusters"),
                       "must not be empty");
        }
        for (int c = 0; c < wc.clusters_size(); ++c) {
          route.clusters.push_back({wc.clusters(c).name(), wc.clusters(c).weight()});
        }
      } else if (!action.cluster().empty()) {
        route.clusters.push_back({action.cluster(), 1});
      } else {
        return error(absl::StrCat(rpath, ".route"), "needs 'cluster' or 'weighted_clusters'");
      }
      for (size_t c = 0; c < route.clusters.size(); ++c) {
        const auto& wc = route.clusters[c];
        if (!cluster_exists(wc.name)) {
          std::string field = action.has_weighted_clusters()
                                  ? absl::StrCat(rpath, ".route.weighted_clusters.clusters[", c,
                                                 "].name")
                                  : absl::StrCat(rpath, ".route.cluster");
          return error(field, absl::StrCat("unknown cluster '", wc.name, "'"));
        }
        route.total_weight += wc.weight;
      }
      if (route.total_weight == 0) {
        return error(absl::StrCat(rpath, ".route.weighted_clusters"),
                     "the weights add up to 0; at least one must be positive");
      }
      if (action.has_timeout()) route.timeout = FromProtoDuration(action.timeout());
      if (route.timeout < absl::ZeroDuration()) {
        return error(absl::StrCat(rpath, ".route.timeout"), "must not be negative");
      }
      if (!action.prefix_rewrite().empty()) {
        if (route.path_match != Route::PathMatch::kPrefix) {
          return error(absl::StrCat(rpath, ".route.prefix_rewrite"), "needs a prefix match");
        }
        route.rewrite_prefix = true;
        route.prefix_rewrite = action.prefix_rewrite();
      }
      host.routes.push_back(std::move(route));
    }
    table->vhosts_.push_back(std::move(host));
  }
  if (auto s = table->Index(); !s.ok()) return error("virtual_hosts", s.message());
  return std::shared_ptr<const RouteTable>(std::move(table));
}

std::shared_ptr<const RouteTable> RouteTable::ForClusters(
    std::string name, const std::vector<std::string>& clusters) {
  auto table = std::make_shared<RouteTable>();
  table->name_ = std::move(name);
  for (const auto& c : clusters) {
    VirtualHost host;
    host.name = c;
    host.domains.push_back(absl::AsciiStrToLower(c));
    Route route;
    route.name = c;
    route.path = "/";
    route.clusters.push_back({c, 1});
    route.total_weight = 1;
    host.routes.push_back(std::move(route));
    table->vhosts_.push_back(std::move(host));
  }
  (void)table->Index();  // cluster names are unique, so domains are too
  return table;
}

absl::Status RouteTable::Index() {
  for (size_t i = 0; i < vhosts_.size(); ++i) {
    for (const auto& d : vhosts_[i].domains) {
      bool fresh = true;
      if (d == "*") {
        fresh = default_ < 0;
        default_ = static_cast<int>(i);
      } else if (absl::StartsWith(d, "*.")) {
        for (const auto& s : suffixes_) fresh = fresh && s.first != d.substr(1);
        suffixes_.emplace_back(d.substr(1), i);
      } else {
        fresh = exact_.emplace(d, i).second;
      }
      if (!fresh) {
        return absl::InvalidArgumentError(
            absl::StrCat("domain '", d, "' appears in more than one virtual host"));
      }
    }
  }
  std::stable_sort(suffixes_.begin(), suffixes_.end(), [](const auto& a, const auto& b) {
    return a.first.size() > b.first.size();
  });
  return absl::OkStatus();
}

const VirtualHost* RouteTable::FindVirtualHost(absl::string_view authority) const {
  auto [lower, port] = SplitAuthority(authority);
  if (auto it = exact_.find(lower); it != exact_.end()) return &vhosts_[it->second];
  absl::string_view host = absl::string_view(lower).substr(0, lower.size() - port.size());
  if (!port.empty()) {
    if (auto it = exact_.find(host); it != exact_.end()) return &vhosts_[it->second];
  }
  for (const auto& [suffix, index] : suffixes_) {
    if (host.size() > suffix.size() && absl::EndsWith(host, suffix)) return &vhosts_[index];
  }
  return default_ >= 0 ? &vhosts_[default_] : nullptr;
}

const Route* RouteTable::Match(absl::string_view authority, absl::string_view path) const {
  const VirtualHost* vh = FindVirtualHost(authority);
  if (vh == nullptr) return nullptr;
  for (const auto& r : vh->routes) {
    if (r.Matches(path)) return &r;
  }
  return nullptr;
}

}  // namespace outrigger::router
