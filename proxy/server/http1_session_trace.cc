// Http1Session's part in distributed tracing (the protocol-independent steps are in
// request_trace.cc): begin the request's trace, and record its span when it ends.
#include "absl/strings/str_cat.h"
#include "filters/tracing/span.h"
#include "proxy/server/http1_session.h"

namespace outrigger::proxy {

void Http1Session::BeginTrace() {
  auto header = [this](absl::string_view name) { return req_.headers.Get(name); };
  trace_.Begin(header, worker_, [this](double percent) { return Chance(percent); });
}

void Http1Session::RecordSpan(double duration_ms) {
  tracing::Span span = trace_.StartSpan(inbound_, absl::ToUnixMicros(start_time_), duration_ms);
  const absl::string_view service =
      inbound_ ? absl::string_view(worker_.service_label())
      : route_ != nullptr ? absl::string_view(route_->virtual_host)
      : !cluster_name_.empty() ? cluster_name_
                               : absl::string_view(req_.authority);
  span.name = absl::StrCat(req_.method, " ", service);
  span.status = status_;
  span.method = req_.method;
  span.authority = req_.authority;
  const absl::string_view path =
      req_.path.empty() ? absl::string_view(req_.target) : absl::string_view(req_.path);
  span.path = std::string(path.substr(0, path.find('?')));
  span.upstream_cluster = std::string(cluster_name_);
  if (host_) span.upstream_host = host_->address_text;
  span.peer_address = client_ip_;
  span.request_id = request_id_;
  span.response_flags = ResponseFlagsString(flags_);
  span.peer_identity = peer_identity_;
  worker_.RecordSpan(std::move(span));
}

}  // namespace outrigger::proxy
