// See message_heads.h.
#include "proxy/server/message_heads.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "filters/tracing/trace_context.h"
#include "proxy/server/telemetry.h"

namespace outrigger::proxy {

void WriteUpstreamHead(const http::RequestHead& req, absl::string_view target, bool chunked,
                       const router::Route* route, const ProxyHeaders& added, std::string* out,
                       absl::string_view host_suffix) {
  out->clear();
  absl::StrAppend(out, req.method, " ", target, " HTTP/1.1\r\n");
  const absl::string_view connection = req.headers.Get("connection").value_or("");
  const router::Route* edits = route != nullptr && route->edits_headers() ? route : nullptr;
  bool has_host = false;
  bool has_proto = false;
  req.headers.ForEach([&](absl::string_view name, absl::string_view value) {
    if (http::IsHopByHop(name, connection)) return;
    if (http::EqualsIgnoreCase(name, "x-forwarded-for") ||
        http::EqualsIgnoreCase(name, "x-request-id")) {
      return;  // replaced below
    }
    if (name.size() > 19 && http::EqualsIgnoreCase(name.substr(0, 19), "x-outrigger-source-")) {
      return;  // only the sidecar sets these
    }
    if (!added.trace_lines.empty() && tracing::IsTraceHeader(name)) return;  // replaced below
    if (http::EqualsIgnoreCase(name, "host")) {
      if (req.absolute_form) return;  // the URI's authority wins
      if (edits != nullptr && !edits->host_rewrite.empty()) return;
      has_host = true;
      if (!host_suffix.empty()) {
        absl::StrAppend(out, name, ": ", value, host_suffix, "\r\n");
        return;
      }
    }
    if (edits != nullptr) {
      // The route's header modifier: removed and replaced headers are dropped here.
      for (const auto& r : edits->remove_headers) {
        if (http::EqualsIgnoreCase(name, r)) return;
      }
      for (const auto& h : edits->set_headers) {
        if (http::EqualsIgnoreCase(name, h.name)) return;
      }
    }
    if (http::EqualsIgnoreCase(name, "x-forwarded-proto")) has_proto = true;
    absl::StrAppend(out, name, ": ", value, "\r\n");
  });
  if (edits != nullptr) {
    if (!edits->host_rewrite.empty()) {
      absl::StrAppend(out, "host: ", edits->host_rewrite, host_suffix, "\r\n");
      has_host = true;
    }
    for (const auto& h : edits->set_headers) {
      absl::StrAppend(out, h.name, ": ", h.value, "\r\n");
    }
    for (const auto& h : edits->add_headers) {
      absl::StrAppend(out, h.name, ": ", h.value, "\r\n");
    }
  }
  if (!has_host && !req.authority.empty()) {
    absl::StrAppend(out, "host: ", req.authority, host_suffix, "\r\n");
  }
  // Ours unless the route's header modifier sets them (then its values were written above).
  auto route_sets = [edits](absl::string_view name) {
    if (edits == nullptr) return false;
    for (const auto& h : edits->set_headers) {
      if (http::EqualsIgnoreCase(h.name, name)) return true;
    }
    return false;
  };
  if (!route_sets("x-forwarded-for")) {
    absl::StrAppend(out, "x-forwarded-for: ", added.forwarded_for, "\r\n");
  }
  if (!route_sets("x-request-id")) {
    absl::StrAppend(out, "x-request-id: ", added.request_id, "\r\n");
  }
  absl::StrAppend(out, added.trace_lines, added.source_lines);
  if (!added.upgrade.empty()) {
    absl::StrAppend(out, "connection: upgrade\r\nupgrade: ", added.upgrade, "\r\n");
  }
  if (!has_proto && !route_sets("x-forwarded-proto")) {
    out->append("x-forwarded-proto: http\r\n");
  }
  if (chunked) out->append("transfer-encoding: chunked\r\n");
  out->append("\r\n");
}

void CallerLabels(absl::string_view peer_identity, const http::HeaderMap& headers,
                  std::string* workload, std::string* version) {
  const size_t sa = peer_identity.rfind("/sa/");
  *workload = sa != absl::string_view::npos
                  ? SanitizeLabel(peer_identity.substr(sa + 4))
                  : SanitizeLabel(headers.Get(kSourceWorkloadHeader).value_or(""));
  *version = SanitizeLabel(headers.Get(kSourceVersionHeader).value_or(""));
}

bool WantsTrailers(const http::HeaderMap& headers) {
  bool trailers = false;
  http::ForEachToken(headers.Get("te").value_or(""), [&](absl::string_view t) {
    trailers = trailers || http::EqualsIgnoreCase(t, "trailers");
  });
  return trailers;
}

http2::Headers ToHttp2Request(absl::string_view head, absl::string_view method,
                              absl::string_view target, absl::string_view authority,
                              bool te_trailers) {
  http2::Headers out = {{":method", std::string(method)},
                        {":scheme", "http"},
                        {":authority", std::string(authority)},
                        {":path", std::string(target)}};
  bool first = true;
  for (absl::string_view line : absl::StrSplit(head, "\r\n", absl::SkipEmpty())) {
    if (first) {  // the request line
      first = false;
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (name == "host") {
      out[2].value = std::string(value);  // a host rewrite, or the client's Host
      continue;
    }
    if (name == "transfer-encoding" || name == "connection") continue;
    out.push_back({std::move(name), std::string(value)});
  }
  if (te_trailers) out.push_back({"te", "trailers"});
  return out;
}

void WriteSwitchingProtocolsHead(const http::ResponseHead& resp, absl::string_view protocol,
                                 std::string* out) {
  out->clear();
  out->append("HTTP/1.1 101 Switching Protocols\r\n");
  const absl::string_view connection = resp.headers.Get("connection").value_or("");
  resp.headers.ForEach([&](absl::string_view name, absl::string_view value) {
    if (http::IsHopByHop(name, connection)) return;
    absl::StrAppend(out, name, ": ", value, "\r\n");
  });
  absl::StrAppend(out, "connection: upgrade\r\nupgrade: ", protocol, "\r\n\r\n");
}

void WriteResponseHead(const http::ResponseHead& resp, http::Framing framing, bool keep_alive,
                       int client_version, std::string* out) {
  out->clear();
  absl::StrAppend(out, "HTTP/1.1 ", resp.status, " ",
                  resp.reason.empty() ? http::ReasonPhrase(resp.status) : resp.reason, "\r\n");
  const absl::string_view connection = resp.headers.Get("connection").value_or("");
  const bool drop_length =
      framing == http::Framing::kChunked || framing == http::Framing::kCloseDelimited;
  resp.headers.ForEach([&](absl::string_view name, absl::string_view value) {
    if (http::IsHopByHop(name, connection)) return;
    if (drop_length && http::EqualsIgnoreCase(name, "content-length")) return;
    absl::StrAppend(out, name, ": ", value, "\r\n");
  });
  if (framing == http::Framing::kChunked) out->append("transfer-encoding: chunked\r\n");
  if (!keep_alive) {
    out->append("connection: close\r\n");
  } else if (client_version == 10) {
    out->append("connection: keep-alive\r\n");
  }
  out->append("\r\n");
}

}  // namespace outrigger::proxy
