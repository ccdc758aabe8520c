// The message heads a session writes: the request head sent upstream (hop-by-hop headers
// dropped, the route's header edits applied, x-forwarded-for / x-request-id / x-forwarded-proto
// set, the body's framing declared) and the response head sent back to the client.
#ifndef OUTRIGGER_PROXY_SERVER_MESSAGE_HEADS_H_
#define OUTRIGGER_PROXY_SERVER_MESSAGE_HEADS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "filters/router/route_table.h"
#include "proxy/http2/h2_codec.h"
#include "proxy/http/http1_codec.h"

namespace outrigger::proxy {

// What the proxy itself adds to a forwarded request.
struct ProxyHeaders {
  absl::string_view forwarded_for;  // the new x-forwarded-for value
  absl::string_view request_id;     // x-request-id
  // Whole header lines ("traceparent: ...\r\n"): the proxy's trace context. When set, the
  // caller's traceparent / b3 / x-b3-* headers are replaced by these.
  absl::string_view trace_lines;
  // Whole header lines naming the calling workload (x-outrigger-source-*), for the peer
  // sidecar's metrics. x-outrigger-source-* headers that arrive are always dropped.
  absl::string_view source_lines;
  // The protocol an Upgrade request asks for ("websocket"): forwarded with `connection: upgrade`
  // (both are hop-by-hop, so they are otherwise dropped).
  absl::string_view upgrade;
};

// Replaces `out` with the head of the request to forward. `route` may be null (no edits).
// `host_suffix` is appended to the Host (mirrors send "reviews-shadow", as Envoy does).
void WriteUpstreamHead(const http::RequestHead& req, absl::string_view target, bool chunked,
                       const router::Route* route, const ProxyHeaders& added, std::string* out,
                       absl::string_view host_suffix = {});

// The head of a 101 answer to an Upgrade request: the upstream's headers without hop-by-hop
// ones, then `connection: upgrade` and `upgrade: <protocol>`.
void WriteSwitchingProtocolsHead(const http::ResponseHead& resp, absl::string_view protocol,
                                 std::string* out);

// An HTTP/1.1 request head written by WriteUpstreamHead, as HTTP/2 header fields: the
// pseudo-headers first (`:authority` from its Host line, else `authority`), names lower-cased,
// connection-specific fields dropped; `te: trailers` added when `te_trailers` (gRPC needs it).
http2::Headers ToHttp2Request(absl::string_view head, absl::string_view method,
                              absl::string_view target, absl::string_view authority,
                              bool te_trailers);

// Whether the client's `TE` header asks for trailers (`te: trailers`, as gRPC clients send).
bool WantsTrailers(const http::HeaderMap& headers);

// The x-outrigger-source-* headers (set by the calling sidecar, read by the called one).
inline constexpr char kSourceWorkloadHeader[] = "x-outrigger-source-workload";
inline constexpr char kSourceVersionHeader[] = "x-outrigger-source-version";

// Who calls an inbound listener, for metric labels: the workload named by the caller's mesh
// certificate (".../sa/NAME"), else what its sidecar's x-outrigger-source-workload says; the
// version only from x-outrigger-source-version. Sanitized (SanitizeLabel).
void CallerLabels(absl::string_view peer_identity, const http::HeaderMap& headers,
                  std::string* workload, std::string* version);

// Replaces `out` with the head of the response for the client, framed as `framing`, saying
// whether the connection stays open.
void WriteResponseHead(const http::ResponseHead& resp, http::Framing framing, bool keep_alive,
                       int client_version, std::string* out);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_MESSAGE_HEADS_H_
