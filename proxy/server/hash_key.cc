// See hash_key.h.
#include "proxy/server/hash_key.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "proxy/http/http1_codec.h"
#include "proxy/upstream/load_balancer.h"

namespace outrigger::proxy {

std::optional<uint64_t> RequestHashKey(const ClusterConfig& cluster,
                                       const http::HeaderMap& headers,
                                       absl::string_view client_ip) {
  if (cluster.lb_policy != lb::Policy::kRingHash && cluster.lb_policy != lb::Policy::kMaglev) {
    return std::nullopt;
  }
  for (const auto& p : cluster.hash_policy) {
    std::optional<absl::string_view> key;
    switch (p.kind) {
      case HashPolicyConfig::Kind::kHeader:
        key = headers.Get(p.name);
        break;
      case HashPolicyConfig::Kind::kCookie:
        key = CookieValue(headers, p.name);
        break;
      case HashPolicyConfig::Kind::kSourceIp:
        key = client_ip;
        break;
    }
    if (key) return lb::HashKey(key->data(), key->size());
  }
  return std::nullopt;
}

std::optional<absl::string_view> CookieValue(const http::HeaderMap& headers,
                                             absl::string_view name) {
  // HTTP/2 clients may split cookies over several `cookie` fields: all are looked at.
  std::optional<absl::string_view> found;
  headers.ForEach([&](absl::string_view h, absl::string_view value) {
    if (found || !http::EqualsIgnoreCase(h, "cookie")) return;
    for (absl::string_view part : absl::StrSplit(value, ';')) {
      part = absl::StripAsciiWhitespace(part);
      if (part.size() > name.size() && part[name.size()] == '=' &&
          absl::StartsWith(part, name)) {
        found = part.substr(name.size() + 1);
        return;
      }
    }
  });
  return found;
}

}  // namespace outrigger::proxy
