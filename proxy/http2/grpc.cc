// See grpc.h.
#include "proxy/http2/grpc.h"

#include "absl/strings/match.h"

namespace outrigger::http2 {

std::optional<absl::Duration> ParseGrpcTimeout(absl::string_view v) {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  int64_t n = 0;
  for (char c : v.substr(0, v.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  switch (v.back()) {
    case 'H': return absl::Hours(n);
    case 'M': return absl::Minutes(n);
    case 'S': return absl::Seconds(n);
    case 'm': return absl::Milliseconds(n);
    case 'u': return absl::Microseconds(n);
    case 'n': return absl::Nanoseconds(n);
    default: return std::nullopt;
  }
}

bool IsGrpc(absl::string_view content_type) {
  return absl::StartsWith(content_type, "application/grpc") &&
         (content_type.size() == 16 || content_type[16] == '+' || content_type[16] == ';');
}

int GrpcStatusForHttp(int http_status, bool timeout) {
  if (timeout) return 4;
  switch (http_status) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429:
    case 502:
    case 503:
    case 504: return 14;
    default: return 2;
  }
}

}  // namespace outrigger::http2
