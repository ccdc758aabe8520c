// See request_record.h.
#include "proxy/server/request_record.h"

#include "absl/strings/str_cat.h"
#include "filters/router/route_table.h"
#include "proxy/server/request_trace.h"
#include "proxy/server/stats.h"
#include "proxy/server/worker.h"

namespace outrigger::proxy {

ListenerStats::LabelView PeerLabels(Worker& worker, bool inbound, absl::string_view cluster,
                                    const router::Route* route, const HostPool* host,
                                    absl::string_view source_workload,
                                    absl::string_view source_version,
                                    absl::string_view peer_identity) {
  ListenerStats::LabelView labels;
  if (inbound) {
    labels.source_workload = source_workload;
    labels.source_version = source_version;
    labels.destination_service = worker.service_label();
    labels.destination_version = worker.version_label();
    labels.mutual_tls = !peer_identity.empty();
  } else {
    labels.source_workload = worker.workload_label();
    labels.source_version = worker.version_label();
    labels.destination_service = route != nullptr  ? absl::string_view(route->virtual_host)
                                 : !cluster.empty() ? cluster
                                                    : absl::string_view("unknown");
    labels.destination_version = host != nullptr && !host->version.empty()
                                     ? absl::string_view(host->version)
                                     : absl::string_view("unknown");
    labels.mutual_tls = host != nullptr && !host->spiffe_id.empty();
  }
  return labels;
}

void RecordFinished(Worker& worker, ListenerStats& stats, FinishedRequest& r) {
  RequestInfo& info = r.info;
  if (r.host != nullptr) info.upstream_host = r.host->address_text;
  ListenerStats::LabelView labels =
      PeerLabels(worker, r.inbound, info.cluster, r.route, r.host, r.source_workload,
                 r.source_version, info.source_identity);
  labels.response_code = static_cast<uint16_t>(info.status);
  labels.response_flags = info.flags;
  labels.grpc_status = r.grpc_status;
  stats.RecordRequest(labels, info.duration_ms, info.bytes_received, info.bytes_sent,
                      &worker.key_scratch());

  if (r.trace != nullptr && r.trace->sampled) {
    tracing::Span span =
        r.trace->StartSpan(r.inbound, absl::ToUnixMicros(info.start_time), info.duration_ms);
    const absl::string_view service = labels.destination_service == "unknown"
                                          ? info.authority
                                          : labels.destination_service;
    span.name = absl::StrCat(info.method, " ", service);
    span.status = info.status;
    span.method = std::string(info.method);
    span.authority = std::string(info.authority);
    span.path = std::string(info.path.substr(0, info.path.find('?')));
    span.upstream_cluster = std::string(info.cluster);
    span.upstream_host = std::string(info.upstream_host);
    span.peer_address = std::string(r.client_ip);
    span.request_id = std::string(info.request_id);
    span.response_flags = ResponseFlagsString(info.flags);
    span.peer_identity = std::string(info.source_identity);
    worker.RecordSpan(std::move(span));
  }
  if (worker.ShouldLog(info.status, info.flags)) worker.LogRequest(info);
}

}  // namespace outrigger::proxy
