// See route_table.h. Authority matching follows Envoy: exact "host:port", then exact "host",
// then the longest "*.suffix" wildcard, then "*".
#include "filters/router/route_table.h"

#include <algorithm>

#include "absl/strings/string_view.h"
#include <re2/re2.h>

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

// RE2: linear-time matching, so no request can make a route's regex backtrack for long.
absl::StatusOr<std::shared_ptr<const re2::RE2>> CompileRegex(const std::string& text) {
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<const re2::RE2>(text, options);
  if (!re->ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid regular expression '", text,
                                                   "': ", re->error()));
  }
  return re;
}

}  // namespace

bool ValueMatch::Matches(absl::string_view value) const {
  if (regex) return RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *regex);
  return value == exact;
}

bool Route::Matches(absl::string_view p) const {
  switch (path_match) {
    case PathMatch::kExact:
      return p == path;
    case PathMatch::kPrefix:
      return absl::StartsWith(p, path);
    case PathMatch::kRegex:
      return RE2::FullMatch(re2::StringPiece(p.data(), p.size()), *path_regex);
    case PathMatch::kSegmentPrefix:
      return absl::StartsWith(p, path) &&
             (p.size() == path.size() || path.back() == '/' || p[path.size()] == '/');
  }
  return false;
}

namespace {

// The first value of query parameter `name` in "a=1&b=2" (no decoding), if present.
std::optional<absl::string_view> QueryParam(absl::string_view query, absl::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    absl::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1);
    }
    if (amp == absl::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace

bool Route::Matches(const RequestView& r) const {
  const size_t q = r.path.find('?');
  if (!Matches(r.path.substr(0, q))) return false;
  if (!method.empty() && r.method != method) return false;
  for (const auto& h : headers) {
    auto v = r.header(h.name);
    if (!v || !h.Matches(*v)) return false;
  }
  if (!query_parameters.empty()) {
    const absl::string_view query =
        q == absl::string_view::npos ? absl::string_view() : r.path.substr(q + 1);
    for (const auto& m : query_parameters) {
      auto v = QueryParam(query, m.name);
      if (!v || !m.Matches(*v)) return false;
    }
  }
  return true;
}

std::string Route::RedirectLocation(const RequestView& r) const {
  const Redirect& d = *redirect;
  absl::string_view authority = r.authority;
  absl::string_view host = authority;
  absl::string_view port;
  if (size_t colon = authority.rfind(':');
      colon != absl::string_view::npos && authority.find(']', colon) == absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  std::string out = absl::StrCat(d.scheme.empty() ? "http" : d.scheme, "://",
                                 d.host.empty() ? host : absl::string_view(d.host));
  if (d.port != 0) {
    absl::StrAppend(&out, ":", d.port);
  } else if (d.host.empty() && !port.empty()) {
    absl::StrAppend(&out, ":", port);
  }
  const size_t q = r.path.find('?');
  const absl::string_view query = q == absl::string_view::npos ? "" : r.path.substr(q);
  if (!d.path.empty()) {
    absl::StrAppend(&out, d.path, query);
  } else if (!d.prefix_rewrite.empty() &&
             (path_match == PathMatch::kPrefix || path_match == PathMatch::kSegmentPrefix)) {
    absl::string_view rest = r.path.substr(path.size());
    absl::string_view replacement = d.prefix_rewrite;
    if (replacement.back() == '/' && !rest.empty() && rest[0] == '/') replacement.remove_suffix(1);
    absl::StrAppend(&out, replacement, rest);
  } else {
    absl::StrAppend(&out, r.path);
  }
  return out;
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
  if (!path_rewrite.empty()) {
    const size_t q = p.find('?');
    return absl::StrCat(path_rewrite, q == absl::string_view::npos ? "" : p.substr(q));
  }
  if (!rewrite_prefix ||
      (path_match != PathMatch::kPrefix && path_match != PathMatch::kSegmentPrefix)) {
    return std::string(p);
  }
  absl::string_view rest = p.substr(path.size());
  absl::string_view replacement = prefix_rewrite;
  // "/foo" -> "/" turns "/foo/x" into "/x", not "//x"; and "/foo" alone into "/".
  if (!replacement.empty() && replacement.back() == '/' && !rest.empty() && rest[0] == '/') {
    replacement.remove_suffix(1);
  }
  std::string out = absl::StrCat(replacement, rest);
  if (out.empty() || out[0] == '?') out.insert(0, "/");
  return out;
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
      route.virtual_host = host.name;
      switch (rp.match().path_specifier_case()) {
        case v1::RouteMatch::kPath:
          route.path_match = Route::PathMatch::kExact;
          route.path = rp.match().path();
          break;
        case v1::RouteMatch::kPrefix:
          route.path = rp.match().prefix();
          break;
        case v1::RouteMatch::kSafeRegex:
          route.path_match = Route::PathMatch::kRegex;
          route.path = rp.match().safe_regex();
          break;
        case v1::RouteMatch::kPathSeparatedPrefix:
          route.path_match = Route::PathMatch::kSegmentPrefix;
          route.path = rp.match().path_separated_prefix();
          while (route.path.size() > 1 && route.path.back() == '/') route.path.pop_back();
          break;
        default:
          route.path = "/";  // no match given: everything
      }
      if (route.path_match == Route::PathMatch::kRegex) {
        auto re = CompileRegex(route.path);
        if (!re.ok()) return error(absl::StrCat(rpath, ".match.safe_regex"), re.status().message());
        route.path_regex = *re;
      } else if (route.path.empty() || route.path[0] != '/') {
        return error(absl::StrCat(rpath, ".match"),
                     absl::StrCat("'", route.path, "': a path must start with '/'"));
      }
      auto values = [&](const auto& list, absl::string_view field,
                        std::vector<ValueMatch>* out, bool lower) -> absl::Status {
        for (int i = 0; i < list.size(); ++i) {
          const auto& m = list[i];
          ValueMatch vm;
          vm.name = lower ? absl::AsciiStrToLower(m.name()) : m.name();
          if (vm.name.empty()) {
            return error(absl::StrCat(rpath, ".match.", field, "[", i, "].name"),
                         "must not be empty");
          }
          if (m.value_match_case() == v1::ValueMatcher::kSafeRegex) {
            auto re = CompileRegex(m.safe_regex());
            if (!re.ok()) {
              return error(absl::StrCat(rpath, ".match.", field, "[", i, "].safe_regex"),
                           re.status().message());
            }
            vm.regex = *re;
          } else {
            vm.exact = m.exact();
          }
          out->push_back(std::move(vm));
        }
        return absl::OkStatus();
      };
      if (auto s = values(rp.match().headers(), "headers", &route.headers, true); !s.ok()) return s;
      if (auto s = values(rp.match().query_parameters(), "query_parameters",
                          &route.query_parameters, false);
          !s.ok()) {
        return s;
      }
      route.method = rp.match().method();
      for (const auto& h : rp.request_headers().set()) {
        route.set_headers.push_back({absl::AsciiStrToLower(h.name()), h.value()});
      }
      for (const auto& h : rp.request_headers().add()) {
        route.add_headers.push_back({absl::AsciiStrToLower(h.name()), h.value()});
      }
      for (const auto& h : rp.request_headers().remove()) {
        route.remove_headers.push_back(absl::AsciiStrToLower(h));
      }
      if (rp.has_redirect()) {
        if (rp.has_route()) {
          return error(rpath, "set either route or redirect, not both");
        }
        const auto& rd = rp.redirect();
        Redirect d;
        d.scheme = rd.scheme();
        d.host = rd.host();
        d.port = rd.port();
        d.path = rd.path();
        d.prefix_rewrite = rd.prefix_rewrite();
        d.status = rd.response_code() == 0 ? 301 : static_cast<int>(rd.response_code());
        if (d.status != 301 && d.status != 302 && d.status != 303 && d.status != 307 &&
            d.status != 308) {
          return error(absl::StrCat(rpath, ".redirect.response_code"),
                       absl::StrCat(d.status, " is not 301, 302, 303, 307 or 308"));
        }
        if (d.port > 65535) {
          return error(absl::StrCat(rpath, ".redirect.port"), "must be at most 65535");
        }
        route.redirect = std::move(d);
        host.routes.push_back(std::move(route));
        continue;
      }
      const auto& action = rp.route();
      route.host_rewrite = action.host_rewrite();
      route.path_rewrite = action.path_rewrite();
      if (!route.path_rewrite.empty() && route.path_rewrite[0] != '/') {
        return error(absl::StrCat(rpath, ".route.path_rewrite"), "must start with '/'");
      }
      if (!route.path_rewrite.empty() && !action.prefix_rewrite().empty()) {
        return error(absl::StrCat(rpath, ".route"),
                     "set either prefix_rewrite or path_rewrite, not both");
      }
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
      if (action.has_retry_policy()) {
        if (auto s = RetryPolicyFromProto(action.retry_policy(),
                                          absl::StrCat(rpath, ".route.retry_policy"), &route.retry);
            !s.ok()) return s;
      }
      for (int m = 0; m < action.request_mirror_policies_size(); ++m) {
        MirrorPolicy mirror;
        const std::string mpath = absl::StrCat(rpath, ".route.request_mirror_policies[", m, "]");
        if (auto s = MirrorFromProto(action.request_mirror_policies(m), mpath, &mirror); !s.ok()) {
          return s;
        }
        if (!cluster_exists(mirror.cluster)) {
          return error(absl::StrCat(mpath, ".cluster"),
                       absl::StrCat("unknown cluster '", mirror.cluster, "'"));
        }
        route.mirrors.push_back(std::move(mirror));
      }
      if (rp.has_fault()) {
        FaultConfig fault;
        if (auto s = FaultFromProto(rp.fault(), absl::StrCat(rpath, ".fault"), &fault); !s.ok()) {
          return s;
        }
        route.fault = fault;
      }
      if (rp.has_local_rate_limit()) {
        RateLimitConfig rl;
        if (auto s = RateLimitFromProto(rp.local_rate_limit(),
                                        absl::StrCat(rpath, ".local_rate_limit"), &rl);
            !s.ok()) return s;
        route.rate_limit = rl;
      }
      if (!action.prefix_rewrite().empty()) {
        if (route.path_match != Route::PathMatch::kPrefix &&
            route.path_match != Route::PathMatch::kSegmentPrefix) {
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
    route.virtual_host = c;
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

const Route* RouteTable::Match(const RequestView& request) const {
  const VirtualHost* vh = FindVirtualHost(request.authority);
  if (vh == nullptr) return nullptr;
  for (const auto& r : vh->routes) {
    if (r.Matches(request)) return &r;
  }
  return nullptr;
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
