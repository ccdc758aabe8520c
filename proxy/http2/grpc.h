// The few gRPC rules a proxy applies (gRPC over HTTP/2, PROTOCOL-HTTP2.md): the `grpc-timeout`
// header, and how a proxy's own answers reach a gRPC client: HTTP status 200 with the error in
// `grpc-status` / `grpc-message` (a trailers-only response), mapped from the HTTP status the proxy
// would have sent, as Envoy does.
#ifndef OUTRIGGER_PROXY_HTTP2_GRPC_H_
#define OUTRIGGER_PROXY_HTTP2_GRPC_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outrigger::http2 {

// "10S", "250m", "1H"...: at most 8 digits and a unit (H M S m u n). Nullopt when malformed.
std::optional<absl::Duration> ParseGrpcTimeout(absl::string_view value);

// A request whose content-type is application/grpc (or application/grpc+proto, ...).
bool IsGrpc(absl::string_view content_type);

// The gRPC status code for a proxy's own HTTP answer: 400 -> 13 INTERNAL, 401 -> 16
// UNAUTHENTICATED, 403 -> 7 PERMISSION_DENIED, 404 -> 12 UNIMPLEMENTED, 429/502/503/504 -> 14
// UNAVAILABLE, except a timeout (504 UT) -> 4 DEADLINE_EXCEEDED; anything else -> 2 UNKNOWN.
int GrpcStatusForHttp(int http_status, bool timeout);

}  // namespace outrigger::http2

#endif  // OUTRIGGER_PROXY_HTTP2_GRPC_H_
