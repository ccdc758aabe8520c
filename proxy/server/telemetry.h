// What the proxy reports about the requests it carries, configured once at start-up: who this
// workload is (the source/destination labels of its metrics and the service name of its spans),
// access-log sampling, and where spans go. Fixed for the life of the process.
#ifndef OUTRIGGER_PROXY_SERVER_TELEMETRY_H_
#define OUTRIGGER_PROXY_SERVER_TELEMETRY_H_

#include <string>

#include "absl/status/statusor.h"
#include "filters/tracing/span.h"

namespace outrigger::proxy {

struct TelemetryOptions {
  std::string service;        // this workload's service ("" when unknown)
  std::string ns = "default";
  std::string version;        // its `version` label ("" when unknown)
  std::string node_id;
  bool access_log = true;
  double access_log_sampling = 100;  // percent of ordinary requests logged; errors always are
  std::string tracing_endpoint;      // "http://HOST:PORT/path"; empty: no spans
  tracing::Format tracing_format = tracing::Format::kZipkin;
  double tracing_sampling = 100;     // percent of new traces recorded

  // Label values: the service as "name.namespace", else "unknown"; the version, else "unknown".
  std::string ServiceLabel() const;
  std::string WorkloadLabel() const;
  std::string VersionLabel() const;
};

// "zipkin" or "otlp".
absl::StatusOr<tracing::Format> ParseTracingFormat(const std::string& text);

// A label value from outside (a peer's header): at most 63 characters of [A-Za-z0-9._-], else
// "unknown", so that a caller cannot blow up the number of series or break the exposition.
std::string SanitizeLabel(absl::string_view value);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_TELEMETRY_H_
