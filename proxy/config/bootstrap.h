// Turns the command line (--inbound/--app/--outbound and an optional --config file) into one
// Bootstrap message: the same resources the control plane will stream later.
#ifndef OUTRIGGER_PROXY_CONFIG_BOOTSTRAP_H_
#define OUTRIGGER_PROXY_CONFIG_BOOTSTRAP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "outrigger/v1/config.pb.h"
#include "proxy/config/snapshot.h"
#include "xds/yaml_proto.h"

namespace outrigger::proxy {

struct SidecarFlags {
  std::string config_path;  // optional YAML file
  std::string inbound;      // listener "inbound" -> cluster "local_app"
  std::string app;          // the local application
  std::string outbound;     // listener "outbound" -> route configuration "outbound"
  std::string inbound_protocol;  // "http" (default), "tcp" or "detect"
  std::string app_protocol;      // "http1" (default) or "http2": how HTTP/2 requests reach --app
  // --tcp-upstream CLUSTER=IP:PORT: an outbound raw-TCP listener "tcp:CLUSTER" at IP:PORT.
  std::vector<std::string> tcp_upstreams;
  // The control plane provides the "outbound" route configuration: do not derive one from the
  // clusters of --config.
  bool routes_from_control_plane = false;
};

// Errors name the flag or the file position at fault. `map`, when given, receives where each
// field of the config file came from.
absl::StatusOr<v1::Bootstrap> BuildBootstrap(const SidecarFlags& flags,
                                             xds::SourceMap* map = nullptr);

// BuildBootstrap, then BuildSnapshot; validation errors point at the config file's lines.
// `bootstrap_out`, when given, receives the resources the snapshot was built from.
absl::StatusOr<std::shared_ptr<const Snapshot>> LoadSnapshot(const SidecarFlags& flags,
                                                             uint64_t version,
                                                             v1::Bootstrap* bootstrap_out = nullptr);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_CONFIG_BOOTSTRAP_H_
