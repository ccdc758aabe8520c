// See bootstrap.h.
#include "proxy/config/bootstrap.h"

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "proxy/config/snapshot.h"
#include "xds/yaml_proto.h"

namespace outrigger::proxy {

absl::StatusOr<v1::Bootstrap> BuildBootstrap(const SidecarFlags& flags, xds::SourceMap* map) {
  v1::Bootstrap b;
  if (!flags.config_path.empty()) {
    if (auto s = xds::YamlFileToProto(flags.config_path, &b, map); !s.ok()) return s;
  }
  auto has_listener = [&](absl::string_view name) {
    for (const auto& l : b.listeners()) {
      if (l.name() == name) return true;
    }
    return false;
  };
  if (!flags.inbound.empty()) {
    if (flags.app.empty()) return absl::InvalidArgumentError("--inbound needs --app IP:PORT");
    if (auto a = ParseAddress(flags.inbound); !a.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--inbound: ", a.status().message()));
    }
    if (auto a = ParseAddress(flags.app); !a.ok() || a->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--app: ", a.ok() ? "port must not be 0" : a.status().message()));
    }
    if (has_listener("inbound")) {
      return absl::InvalidArgumentError("--inbound: the config already has a listener 'inbound'");
    }
    v1::Cluster* app = b.add_clusters();
    app->set_name("local_app");
    app->add_endpoints()->set_address(flags.app);
    if (flags.app_protocol == "http2") {
      app->set_upstream_protocol(v1::Cluster::HTTP2);
    } else if (!flags.app_protocol.empty() && flags.app_protocol != "http1") {
      return absl::InvalidArgumentError(
          absl::StrCat("--app-protocol: '", flags.app_protocol, "' is not http1 or http2"));
    }
    v1::Listener* l = b.add_listeners();
    l->set_name("inbound");
    l->set_address(flags.inbound);
    l->set_direction(v1::Listener::INBOUND);
    l->set_cluster("local_app");
    if (flags.inbound_protocol == "tcp") {
      l->set_protocol(v1::Listener::TCP);
    } else if (flags.inbound_protocol == "detect") {
      l->set_protocol(v1::Listener::DETECT);
    } else if (!flags.inbound_protocol.empty() && flags.inbound_protocol != "http") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--inbound-protocol: '", flags.inbound_protocol, "' is not http, tcp or detect"));
    }
  } else if (!flags.app.empty()) {
    return absl::InvalidArgumentError("--app is only used with --inbound IP:PORT");
  }
  if (!flags.outbound.empty()) {
    if (auto a = ParseAddress(flags.outbound); !a.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--outbound: ", a.status().message()));
    }
    if (has_listener("outbound")) {
      return absl::InvalidArgumentError(
          "--outbound: the config already has a listener 'outbound'");
    }
    bool have_routes = false;
    for (const auto& r : b.routes()) have_routes = have_routes || r.name() == "outbound";
    if (!have_routes && !flags.routes_from_control_plane) {
      // No route table given: each cluster serves the authority of its own name.
      v1::RouteConfiguration* rc = b.add_routes();
      rc->set_name("outbound");
      for (const auto& c : b.clusters()) {
        if (c.name() == "local_app") continue;
        v1::VirtualHost* vh = rc->add_virtual_hosts();
        vh->set_name(c.name());
        vh->add_domains(c.name());
        v1::Route* route = vh->add_routes();
        route->mutable_match()->set_prefix("/");
        route->mutable_route()->set_cluster(c.name());
      }
    }
    v1::Listener* l = b.add_listeners();
    l->set_name("outbound");
    l->set_address(flags.outbound);
    l->set_direction(v1::Listener::OUTBOUND);
    l->set_route_config("outbound");
  }
  for (const std::string& spec : flags.tcp_upstreams) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tcp-upstream '", spec, "': expected CLUSTER=IP:PORT"));
    }
    const std::string cluster = spec.substr(0, eq);
    const std::string address = spec.substr(eq + 1);
    if (auto a = ParseAddress(address); !a.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tcp-upstream '", spec, "': ", a.status().message()));
    }
    const std::string name = absl::StrCat("tcp:", cluster);
    if (has_listener(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tcp-upstream '", spec, "': a listener '", name, "' already exists"));
    }
    v1::Listener* l = b.add_listeners();
    l->set_name(name);
    l->set_address(address);
    l->set_direction(v1::Listener::OUTBOUND);
    l->set_cluster(cluster);
    l->set_protocol(v1::Listener::TCP);
  }
  if (b.listeners_size() == 0) {
    return absl::InvalidArgumentError(
        "nothing to serve: give --inbound and --app, --outbound, or a --config with listeners");
  }
  return b;
}

absl::StatusOr<std::shared_ptr<const Snapshot>> LoadSnapshot(const SidecarFlags& flags,
                                                             uint64_t version,
                                                             v1::Bootstrap* bootstrap_out) {
  xds::SourceMap map;
  map.source = flags.config_path.empty() ? "config" : flags.config_path;
  auto bootstrap = BuildBootstrap(flags, &map);
  if (!bootstrap.ok()) return bootstrap.status();
  // Following a control plane, the outbound routes arrive later (routing nothing meanwhile).
  auto snapshot = BuildSnapshot(*bootstrap, version, flags.routes_from_control_plane);
  if (!snapshot.ok()) {
    return absl::InvalidArgumentError(map.Annotate(snapshot.status().message()));
  }
  if (bootstrap_out != nullptr) *bootstrap_out = *std::move(bootstrap);
  return snapshot;
}

}  // namespace outrigger::proxy
