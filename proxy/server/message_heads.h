// The message heads a session writes: the request head sent upstream (hop-by-hop headers
// dropped, the route's header edits applied, x-forwarded-for / x-request-id / x-forwarded-proto
// set, the body's framing declared) and the response head sent back to the client.
#ifndef OUTRIGGER_PROXY_SERVER_MESSAGE_HEADS_H_
#define OUTRIGGER_PROXY_SERVER_MESSAGE_HEADS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "filters/router/route_table.h"
#include "proxy/http/http1_codec.h"

namespace outrigger::proxy {

// Replaces `out` with the head of the request to forward. `route` may be null (no edits).
// `host_suffix` is appended to the Host (mirrors send "reviews-shadow", as Envoy does).
void WriteUpstreamHead(const http::RequestHead& req, absl::string_view target, bool chunked,
                       const router::Route* route, absl::string_view forwarded_for,
                       absl::string_view request_id, std::string* out,
                       absl::string_view host_suffix = {});

// Replaces `out` with the head of the response for the client, framed as `framing`, saying
// whether the connection stays open.
void WriteResponseHead(const http::ResponseHead& resp, http::Framing framing, bool keep_alive,
                       int client_version, std::string* out);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_MESSAGE_HEADS_H_
