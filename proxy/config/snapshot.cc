// See snapshot.h. This is the proto -> domain boundary: after BuildSnapshot nothing on the request
// path touches a protobuf message.
#include "proxy/config/snapshot.h"

#include "certs/spiffe_id.h"
#include "proxy/config/cluster_policies.h"

#include <arpa/inet.h>

#include "absl/strings/string_view.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "outrigger/v1/config.pb.h"

namespace outrigger::proxy {
namespace {

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// Applies a proto duration when set; rejects negative values with the field's name.
absl::Status SetDuration(bool has, const google::protobuf::Duration& d, absl::string_view field,
                         absl::Duration* out) {
  if (!has) return absl::OkStatus();
  absl::Duration v = FromProto(d);
  if (v < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be negative"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::StatusOr<EndpointConfig> EndpointFromProto(const v1::Endpoint& e) {
  EndpointConfig out;
  auto addr = ParseAddress(e.address());
  if (!addr.ok()) return absl::InvalidArgumentError(absl::StrCat("address: ", addr.status().message()));
  if (addr->port == 0) return absl::InvalidArgumentError("address: port must not be 0");
  out.address = *addr;
  out.weight = e.weight() == 0 ? 1 : e.weight();
  if (!e.spiffe_id().empty()) {
    auto id = certs::ParseSpiffeId(e.spiffe_id());
    if (!id.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("spiffe_id: ", id.status().message()));
    }
    out.spiffe_id = e.spiffe_id();
  }
  for (const auto& [k, v] : e.labels()) out.labels[k] = v;
  return out;
}

}  // namespace

std::string Address::ToString() const {
  if (ip.find(':') != std::string::npos) return absl::StrCat("[", ip, "]:", port);
  return absl::StrCat(ip, ":", port);
}

absl::StatusOr<Address> ParseAddress(absl::string_view text) {
  absl::string_view host;
  absl::string_view port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': expected [IPv6]:PORT"));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': expected IP:PORT"));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  uint32_t p = 0;
  if (!absl::SimpleAtoi(port, &p) || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': invalid port '", port, "'"));
  }
  Address out;
  out.port = static_cast<uint16_t>(p);
  if (host == "localhost") host = "127.0.0.1";
  std::string h(host);
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, h.c_str(), buf) != 1 && inet_pton(AF_INET6, h.c_str(), buf) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': '", host, "' is not an IP address (names are not resolved)"));
  }
  out.ip = std::move(h);
  return out;
}

const ListenerConfig* Snapshot::FindListener(absl::string_view name) const {
  for (const auto& l : listeners) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

const ClusterConfig* Snapshot::FindCluster(absl::string_view name) const {
  auto it = clusters.find(name);
  return it == clusters.end() ? nullptr : it->second.get();
}

absl::StatusOr<std::shared_ptr<const Snapshot>> BuildSnapshot(const v1::Bootstrap& bootstrap,
                                                              uint64_t version,
                                                              bool lenient_references) {
  auto snap = std::make_shared<Snapshot>();
  snap->version = version;

  // Clusters, then the endpoints assigned to them.
  absl::flat_hash_map<std::string, std::shared_ptr<ClusterConfig>> clusters;
  for (int i = 0; i < bootstrap.clusters_size(); ++i) {
    const auto& c = bootstrap.clusters(i);
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("clusters[", i, "].", what));
    };
    if (c.name().empty()) return error("name: must not be empty");
    auto cluster = std::make_shared<ClusterConfig>();
    cluster->name = c.name();
    if (auto s = SetDuration(c.has_connect_timeout(), c.connect_timeout(), "connect_timeout",
                             &cluster->connect_timeout); !s.ok()) return error(s.message());
    if (auto s = SetDuration(c.has_idle_timeout(), c.idle_timeout(), "idle_timeout",
                             &cluster->idle_timeout); !s.ok()) return error(s.message());
    if (c.max_idle_connections_per_host() > 0) {
      cluster->max_idle_per_host = c.max_idle_connections_per_host();
    }
    if (auto s = ClusterPoliciesFromProto(c, cluster.get()); !s.ok()) return error(s.message());
    for (int e = 0; e < c.endpoints_size(); ++e) {
      auto ep = EndpointFromProto(c.endpoints(e));
      if (!ep.ok()) return error(absl::StrCat("endpoints[", e, "].", ep.status().message()));
      cluster->endpoints.push_back(*std::move(ep));
    }
    if (!clusters.emplace(c.name(), cluster).second) {
      return error(absl::StrCat("name: duplicate cluster name '", c.name(), "'"));
    }
  }
  for (int i = 0; i < bootstrap.endpoints_size(); ++i) {
    const auto& la = bootstrap.endpoints(i);
    auto it = clusters.find(la.cluster_name());
    if (it == clusters.end() && lenient_references) continue;
    if (it == clusters.end()) {
      return absl::InvalidArgumentError(absl::StrCat("endpoints[", i, "].cluster_name: unknown "
                                                     "cluster '", la.cluster_name(), "'"));
    }
    for (int e = 0; e < la.endpoints_size(); ++e) {
      auto ep = EndpointFromProto(la.endpoints(e));
      if (!ep.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("endpoints[", i, "].endpoints[", e, "].",
                                                       ep.status().message()));
      }
      it->second->endpoints.push_back(*std::move(ep));
    }
  }
  for (auto& [name, c] : clusters) snap->clusters[name] = c;

  // Route tables.
  auto cluster_exists = [&](absl::string_view n) {
    return lenient_references || clusters.contains(n);
  };
  absl::flat_hash_map<std::string, std::shared_ptr<const router::RouteTable>> tables;
  for (int i = 0; i < bootstrap.routes_size(); ++i) {
    const auto& rc = bootstrap.routes(i);
    if (rc.name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("routes[", i, "].name: must not be empty"));
    }
    auto table = router::RouteTable::FromProto(rc, cluster_exists);
    if (!table.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("routes[", i, "].", table.status().message(),
                                                     " (route configuration '", rc.name(), "')"));
    }
    if (!tables.emplace(rc.name(), *table).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("routes[", i, "].name: duplicate route configuration '", rc.name(), "'"));
    }
  }

  // Listeners.
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < bootstrap.listeners_size(); ++i) {
    const auto& l = bootstrap.listeners(i);
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("listeners[", i, "].", what));
    };
    if (l.name().empty()) return error("name: must not be empty");
    if (!names.insert(l.name()).second) {
      return error(absl::StrCat("name: duplicate listener name '", l.name(), "'"));
    }
    ListenerConfig out;
    out.name = l.name();
    auto addr = ParseAddress(l.address());
    if (!addr.ok()) return error(absl::StrCat("address: ", addr.status().message()));
    out.address = *addr;
    out.direction = l.direction() == v1::Listener::INBOUND ? Direction::kInbound
                                                            : Direction::kOutbound;
    if (!l.route_config().empty() && !l.cluster().empty()) {
      return error("route_config: set either route_config or cluster, not both");
    }
    if (!l.route_config().empty()) {
      auto it = tables.find(l.route_config());
      if (it == tables.end() && lenient_references) {
        // Not arrived yet: the listener routes nothing (404 NR) until it does.
        it = tables.emplace(l.route_config(),
                            router::RouteTable::ForClusters(l.route_config(), {})).first;
      }
      if (it == tables.end()) {
        return error(absl::StrCat("route_config: unknown route configuration '",
                                  l.route_config(), "'"));
      }
      out.routes = it->second;
    } else if (!l.cluster().empty()) {
      // (From a control plane the cluster may come later: until then connections get 503 UH,
      // or are closed when raw TCP.)
      if (!clusters.contains(l.cluster()) && !lenient_references) {
        return error(absl::StrCat("cluster: unknown cluster '", l.cluster(), "'"));
      }
      out.cluster = l.cluster();
    } else {
      return error("route_config: needs route_config or cluster");
    }
    v1::Listener::Protocol protocol = l.protocol();
    if (out.direction == Direction::kInbound &&
        bootstrap.inbound_policy().inbound_protocol() != v1::Listener::PROTOCOL_UNSPECIFIED) {
      protocol = bootstrap.inbound_policy().inbound_protocol();  // from the Service's ports
    }
    switch (protocol) {
      case v1::Listener::TCP: out.protocol = ListenerProtocol::kTcp; break;
      case v1::Listener::DETECT: out.protocol = ListenerProtocol::kDetect; break;
      default: out.protocol = ListenerProtocol::kHttp; break;
    }
    if (out.protocol != ListenerProtocol::kHttp && out.cluster.empty()) {
      return error("protocol: TCP and DETECT need `cluster` (raw TCP goes to one cluster)");
    }
    if (auto s = SetDuration(l.has_protocol_detection_timeout(), l.protocol_detection_timeout(),
                             "protocol_detection_timeout", &out.detection_timeout);
        !s.ok()) return error(s.message());
    if (out.detection_timeout > absl::Seconds(1) || out.detection_timeout <= absl::ZeroDuration()) {
      return error("protocol_detection_timeout: must be more than 0 and at most 1s");
    }
    const auto& h = l.http();
    if (auto s = SetDuration(h.has_idle_timeout(), h.idle_timeout(), "http.idle_timeout",
                             &out.http.idle_timeout); !s.ok()) return error(s.message());
    if (auto s = SetDuration(h.has_request_headers_timeout(), h.request_headers_timeout(),
                             "http.request_headers_timeout", &out.http.request_headers_timeout);
        !s.ok()) return error(s.message());
    if (auto s = SetDuration(h.has_stream_idle_timeout(), h.stream_idle_timeout(),
                             "http.stream_idle_timeout", &out.http.stream_idle_timeout);
        !s.ok()) return error(s.message());
    if (h.max_request_headers_kb() > 0) {
      if (h.max_request_headers_kb() > 8192) {
        return error("http.max_request_headers_kb: at most 8192");
      }
      out.http.max_request_headers_bytes = h.max_request_headers_kb() * 1024;
    }
    if (l.has_local_rate_limit()) {
      router::RateLimitConfig rl;
      if (auto s = router::RateLimitFromProto(l.local_rate_limit(), "local_rate_limit", &rl);
          !s.ok()) return error(s.message());
      out.rate_limit = rl;
    }
    if (out.direction == Direction::kInbound &&
        bootstrap.inbound_policy().authorization_size() > 0) {
      auto authz = authz::Authorizer::FromProto(bootstrap.inbound_policy().authorization());
      if (!authz.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("inbound_policy.", authz.status().message()));
      }
      out.authz = *std::move(authz);
    }
    if (out.direction == Direction::kInbound) {
      switch (bootstrap.inbound_policy().tls_mode()) {
        case v1::DISABLE: out.tls_mode = TlsMode::kDisable; break;
        case v1::PERMISSIVE: out.tls_mode = TlsMode::kPermissive; break;
        case v1::STRICT: out.tls_mode = TlsMode::kStrict; break;
        default: out.tls_mode = TlsMode::kAuto; break;
      }
    }
    if (out.direction == Direction::kInbound && bootstrap.inbound_policy().has_local_rate_limit()) {
      // The control plane's per-service limit for this proxy's inbound side.
      router::RateLimitConfig rl;
      if (auto s = router::RateLimitFromProto(bootstrap.inbound_policy().local_rate_limit(),
                                              "inbound_policy.local_rate_limit", &rl);
          !s.ok()) return absl::InvalidArgumentError(s.message());
      out.rate_limit = rl;
    }
    snap->listeners.push_back(std::move(out));
  }

  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(bootstrap, &snap->config_dump_json, options);
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

}  // namespace outrigger::proxy
