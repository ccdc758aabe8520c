// See telemetry.h.
#include "proxy/server/telemetry.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace outrigger::proxy {

std::string TelemetryOptions::ServiceLabel() const {
  if (service.empty()) return "unknown";
  return absl::StrCat(service, ".", ns.empty() ? "default" : ns);
}

std::string TelemetryOptions::WorkloadLabel() const {
  return service.empty() ? "unknown" : service;
}

std::string TelemetryOptions::VersionLabel() const {
  return version.empty() ? "unknown" : version;
}

absl::StatusOr<tracing::Format> ParseTracingFormat(const std::string& text) {
  if (text == "zipkin") return tracing::Format::kZipkin;
  if (text == "otlp") return tracing::Format::kOtlp;
  return absl::InvalidArgumentError(
      absl::StrCat("--tracing-format: '", text, "' is not one of: zipkin, otlp"));
}

std::string SanitizeLabel(absl::string_view value) {
  if (value.empty() || value.size() > 63) return "unknown";
  for (char c : value) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return "unknown";
    }
  }
  return std::string(value);
}

}  // namespace outrigger::proxy
