// outrigger-proxy: the sidecar. Reads flags (or OUTRIGGER_* variables) and an optional static
// config, validates it whole, then serves until SIGTERM or POST /quitquitquit drains it.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/string_view.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "outrigger/v1/discovery.pb.h"
#include "absl/time/time.h"
#include "certs/join_token.h"
#include "proxy/config/bootstrap.h"
#include "proxy/config/snapshot.h"
#include "proxy/server/proxy_server.h"
#include "xds/common/env_flags.h"
#include "xds/common/file.h"
#include "xds/common/log.h"

ABSL_FLAG(std::string, inbound, "", "Inbound listener IP:PORT; forwards to --app.");
ABSL_FLAG(std::string, app, "", "The local application's IP:PORT (cluster 'local_app').");
ABSL_FLAG(std::string, inbound_protocol, "http",
          "What --inbound carries: 'http', 'tcp' (raw bytes to --app) or 'detect' (HTTP when the "
          "first bytes are an HTTP request line, else raw TCP; a client silent for 100 ms is "
          "taken to wait for a server-first protocol). A control plane sets it from the "
          "Service's ports.");
ABSL_FLAG(std::string, app_protocol, "http1",
          "How requests from HTTP/2 clients reach --app: 'http1' (pooled HTTP/1.1) or 'http2' "
          "(one multiplexed h2c connection per worker; for gRPC servers).");
ABSL_FLAG(std::string, outbound, "",
          "Outbound listener IP:PORT; routes by authority (Host or absolute-form URI).");
ABSL_FLAG(std::string, admin, "", "Admin server IP:PORT (/ready, /metrics, /config_dump, ...).");
ABSL_FLAG(std::string, config, "", "Static config file (YAML; see xds/proto/outrigger/v1).");
ABSL_FLAG(int, concurrency, 0, "Worker threads; 0 means one per core.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(5),
          "On SIGTERM, how long requests in flight may take to finish.");
ABSL_FLAG(std::string, access_log, "stdout", "Access log: 'stdout' (JSON lines) or 'off'.");
ABSL_FLAG(double, access_log_sampling, 100,
          "Percent of ordinary requests logged (0-100); 5xx answers and requests with response "
          "flags are always logged.");
ABSL_FLAG(std::string, tracing_endpoint, "",
          "Send spans to this collector, e.g. http://127.0.0.1:9411/api/v2/spans (Zipkin) or "
          "http://127.0.0.1:4318/v1/traces (OTLP). Empty: no spans (trace headers pass through).");
ABSL_FLAG(std::string, tracing_format, "zipkin", "Span encoding: 'zipkin' (v2 JSON) or 'otlp' "
          "(OTLP/HTTP JSON).");
ABSL_FLAG(double, tracing_sampling, 100,
          "Percent of new traces recorded (0-100); a caller's sampling decision is kept.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");
ABSL_FLAG(std::string, control_plane, "",
          "outrigger-control's discovery address HOST:PORT; clusters, endpoints and routes then "
          "come from it.");
ABSL_FLAG(std::string, service, "", "This workload's service name (with --control-plane).");
ABSL_FLAG(std::string, namespace, "default", "This workload's namespace.");
ABSL_FLAG(std::string, node_id, "", "Unique id of this proxy; default SERVICE-HOSTNAME-PID.");
ABSL_FLAG(std::string, advertise_address, "",
          "IP:PORT other sidecars use to reach this workload (with --control-plane); default: "
          "the --inbound address, which must then not be 0.0.0.0 or ::.");
ABSL_FLAG(std::string, ca_bundle, "",
          "The mesh's trust bundle (PEM): verify the control plane with it, get this workload's "
          "certificate from the mesh CA (with a join token) and follow the control plane over "
          "mTLS. Empty: plaintext.");
ABSL_FLAG(std::string, join_token_file, "",
          "File holding the join token (`outrigger token create`); or set OUTRIGGER_JOIN_TOKEN. "
          "Needed with --ca-bundle.");
// --label K=V and --tcp-upstream CLUSTER=IP:PORT (an outbound raw-TCP listener at IP:PORT
// relaying to CLUSTER) may be repeated; they are collected before Abseil parses the rest.

namespace {


// Removes every "--label X" / "--label=X" from argv and returns the values.
std::vector<std::string> TakeRepeatedFlag(int* argc, char** argv, const std::string& name) {
  std::vector<std::string> values;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      for (; i < *argc; ++i) argv[out++] = argv[i];
      break;
    }
    if (a == "--" + name && i + 1 < *argc) {
      values.push_back(argv[++i]);
    } else if (a.rfind("--" + name + "=", 0) == 0) {
      values.push_back(a.substr(name.size() + 3));
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return values;
}

}  // namespace

namespace {

int Fail(absl::string_view message) {
  std::cerr << "outrigger-proxy: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto started = std::chrono::steady_clock::now();
  ::signal(SIGPIPE, SIG_IGN);
  // --help lists the flags defined in this file (Abseil's default looks for a file named like
  // the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::EndsWith(file, "main.cc"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "the Outrigger sidecar proxy.\n\n"
      "  outrigger-proxy --inbound 127.0.0.1:15006 --app 127.0.0.1:8080 --admin 127.0.0.1:15000\n"
      "  outrigger-proxy --config mesh.yaml --outbound 127.0.0.1:15001\n\n"
      "Every flag can also be set as OUTRIGGER_<FLAG> (e.g. OUTRIGGER_INBOUND).");
  if (auto s = outrigger::ApplyEnvironmentToFlags(
          {"inbound", "app", "outbound", "admin", "config", "concurrency", "drain_timeout",
           "access_log", "log_level", "control_plane", "service", "namespace", "node_id",
           "advertise_address", "ca_bundle", "join_token_file", "access_log_sampling",
           "tracing_endpoint", "tracing_format", "tracing_sampling", "inbound_protocol",
           "app_protocol"});
      !s.ok()) {
    return Fail(s.message());
  }
  outrigger::NormalizeFlagDashes(argc, argv);
  std::vector<std::string> labels = TakeRepeatedFlag(&argc, argv, "label");
  std::vector<std::string> tcp_upstreams = TakeRepeatedFlag(&argc, argv, "tcp_upstream");
  if (labels.empty()) {
    if (const char* env = std::getenv("OUTRIGGER_LABEL"); env != nullptr && *env != '\0') {
      labels = absl::StrSplit(env, ',', absl::SkipEmpty());
    }
  }
  absl::ParseCommandLine(argc, argv);

  outrigger::LogLevel level;
  if (!outrigger::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail(absl::StrCat("--log-level: '", absl::GetFlag(FLAGS_log_level),
                             "' is not debug, info, warning or error"));
  }
  outrigger::SetLogLevel(level);
  const std::string access_log = absl::GetFlag(FLAGS_access_log);
  if (access_log != "stdout" && access_log != "off") {
    return Fail(absl::StrCat("--access-log: '", access_log, "' is not 'stdout' or 'off'"));
  }
  for (const auto& [name, value] :
       {std::pair<const char*, double>{"--access-log-sampling",
                                        absl::GetFlag(FLAGS_access_log_sampling)},
        {"--tracing-sampling", absl::GetFlag(FLAGS_tracing_sampling)}}) {
    if (!(value >= 0 && value <= 100)) {
      return Fail(absl::StrCat(name, ": ", value, " is not a percentage between 0 and 100"));
    }
  }
  auto tracing_format = outrigger::proxy::ParseTracingFormat(absl::GetFlag(FLAGS_tracing_format));
  if (!tracing_format.ok()) return Fail(tracing_format.status().message());
  int concurrency = absl::GetFlag(FLAGS_concurrency);
  if (concurrency < 0 || concurrency > 256) {
    return Fail(absl::StrCat("--concurrency: ", concurrency, " is not between 0 and 256"));
  }
  if (concurrency == 0) concurrency = std::max(1u, std::thread::hardware_concurrency());
  if (absl::GetFlag(FLAGS_drain_timeout) < absl::ZeroDuration()) {
    return Fail("--drain-timeout: must not be negative");
  }

  outrigger::proxy::SidecarFlags flags;
  flags.config_path = absl::GetFlag(FLAGS_config);
  flags.inbound = absl::GetFlag(FLAGS_inbound);
  flags.app = absl::GetFlag(FLAGS_app);
  flags.outbound = absl::GetFlag(FLAGS_outbound);
  flags.inbound_protocol = absl::GetFlag(FLAGS_inbound_protocol);
  flags.app_protocol = absl::GetFlag(FLAGS_app_protocol);
  flags.tcp_upstreams = tcp_upstreams;
  const std::string control_plane = absl::GetFlag(FLAGS_control_plane);
  flags.routes_from_control_plane = !control_plane.empty();
  // Who this workload is: registered with the control plane, and the labels of its metrics
  // and spans (also without a control plane).
  outrigger::v1::Node node;
  node.set_service(absl::GetFlag(FLAGS_service));
  node.set_namespace_(absl::GetFlag(FLAGS_namespace));
  if (!control_plane.empty() && node.service().empty()) {
    return Fail("--control-plane needs --service NAME");
  }
  for (const std::string& l : labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    if (kv.first.empty() || l.find('=') == std::string::npos) {
      return Fail(absl::StrCat("--label '", l, "': expected KEY=VALUE"));
    }
    (*node.mutable_labels())[kv.first] = kv.second;
  }
  std::string id = absl::GetFlag(FLAGS_node_id);
  if (id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    id = absl::StrCat(node.service().empty() ? "outrigger-proxy" : node.service(), "-", host, "-",
                      ::getpid());
  }
  node.set_id(id);
  node.set_proxy_version("outrigger-proxy 0.1.0");
  outrigger::v1::Bootstrap local;  // what flags and --config give, before any control plane
  auto snapshot = outrigger::proxy::LoadSnapshot(flags, 1, &local);
  if (!snapshot.ok()) return Fail(snapshot.status().message());

  outrigger::proxy::ServerOptions options;
  options.concurrency = concurrency;
  options.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  outrigger::proxy::TelemetryOptions& t = options.telemetry;
  t.service = node.service();
  t.ns = node.namespace_();
  if (auto v = node.labels().find("version"); v != node.labels().end()) t.version = v->second;
  t.node_id = node.id();
  t.access_log = access_log == "stdout";
  t.access_log_sampling = absl::GetFlag(FLAGS_access_log_sampling);
  t.tracing_endpoint = absl::GetFlag(FLAGS_tracing_endpoint);
  t.tracing_format = *tracing_format;
  t.tracing_sampling = absl::GetFlag(FLAGS_tracing_sampling);
  options.admin_address = absl::GetFlag(FLAGS_admin);
  outrigger::proxy::ProxyServer server(options);
  if (auto s = server.Start(*snapshot); !s.ok()) return Fail(s.message());
  if (!control_plane.empty()) {
    const std::string advertise = absl::GetFlag(FLAGS_advertise_address);
    if (!advertise.empty()) {
      auto a = outrigger::proxy::ParseAddress(advertise);
      if (!a.ok() || a->port == 0) {
        return Fail(absl::StrCat("--advertise-address: ",
                                 a.ok() ? "port must not be 0" : a.status().message()));
      }
      node.set_inbound_address(a->ToString());
    } else if (auto it = server.bound_addresses().find("inbound");
               it != server.bound_addresses().end()) {
      if (absl::StartsWith(it->second, "0.0.0.0:") || absl::StartsWith(it->second, "[::]:")) {
        return Fail(absl::StrCat("--inbound ", it->second,
                                 " listens on every address; give --advertise-address IP:PORT so "
                                 "other sidecars know where to reach this workload"));
      }
      node.set_inbound_address(it->second);
    }
    outrigger::LogInfo("following control plane ", control_plane, " as ", node.id(), " (service ",
                       node.service(), ")");
    std::string bundle, token;
    if (const std::string path = absl::GetFlag(FLAGS_ca_bundle); !path.empty()) {
      auto text = outrigger::ReadFile(path);
      if (!text.ok()) return Fail(absl::StrCat("--ca-bundle: ", text.status().message()));
      bundle = *std::move(text);
      if (const std::string tf = absl::GetFlag(FLAGS_join_token_file); !tf.empty()) {
        auto t = outrigger::ReadFile(tf);
        if (!t.ok()) return Fail(absl::StrCat("--join-token-file: ", t.status().message()));
        token = std::string(absl::StripAsciiWhitespace(*t));
      } else if (const char* env = std::getenv("OUTRIGGER_JOIN_TOKEN")) {
        token = std::string(absl::StripAsciiWhitespace(env));
      }
      if (token.empty()) {
        return Fail("--ca-bundle needs a join token: --join-token-file FILE or "
                    "OUTRIGGER_JOIN_TOKEN (from `outrigger token create`)");
      }
      if (auto claims = outrigger::certs::ReadJoinToken(token); !claims.ok()) {
        return Fail(absl::StrCat("join token: ", claims.status().message()));
      } else if (claims->id.service_account != node.service() ||
                 claims->id.ns != node.namespace_()) {
        return Fail(absl::StrCat("the join token is for ", claims->id.ToString(),
                                 ", not for service ", node.service(), " in namespace ",
                                 node.namespace_()));
      }
    }
    server.EnableDiscovery(control_plane, node, std::move(local), std::move(bundle),
                           std::move(token));
  }
  outrigger::LogInfo(
      "ready in ",
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                            started).count() / 1000.0,
      " ms: ", concurrency, " worker(s), ", (*snapshot)->listeners.size(), " listener(s), ",
      (*snapshot)->clusters.size(), " cluster(s)");
  const int code = server.Run();
  outrigger::LogInfo("exiting");
  return code;
}
