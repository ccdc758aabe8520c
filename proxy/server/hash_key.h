// The consistent-hashing key of a request (RING_HASH and MAGLEV clusters): the cluster's hash
// policies in order, the first that finds a value wins (a header, a cookie, or the client's IP).
// The same for HTTP/1.1 requests and HTTP/2 streams.
#ifndef OUTRIGGER_PROXY_SERVER_HASH_KEY_H_
#define OUTRIGGER_PROXY_SERVER_HASH_KEY_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "proxy/config/snapshot.h"
#include "proxy/http/header_map.h"

namespace outrigger::proxy {

// nullopt when the cluster does not hash, or no policy found a value.
std::optional<uint64_t> RequestHashKey(const ClusterConfig& cluster,
                                       const http::HeaderMap& headers,
                                       absl::string_view client_ip);

// The value of cookie `name` in the request's Cookie header(s).
std::optional<absl::string_view> CookieValue(const http::HeaderMap& headers,
                                             absl::string_view name);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_HASH_KEY_H_
