// The end of a request, whatever protocol carried it (HTTP/1.1, an HTTP/2 stream): its Istio
// labels and histograms in the listener's stats, its span (when sampled), and its access-log line
// (when the log and its sampling want it). Both sessions fill one FinishedRequest and call
// RecordFinished, so metrics, traces and logs read the same for every protocol.
#ifndef OUTRIGGER_PROXY_SERVER_REQUEST_RECORD_H_
#define OUTRIGGER_PROXY_SERVER_REQUEST_RECORD_H_

#include "absl/strings/string_view.h"
#include "proxy/server/access_log.h"
#include "proxy/server/stats.h"

namespace outrigger::router {
struct Route;
}  // namespace outrigger::router

namespace outrigger::proxy {

class Worker;
struct HostPool;
struct RequestTrace;

struct FinishedRequest {
  RequestInfo info;  // what the access log shows (upstream_host is filled from `host`)
  bool inbound = false;
  absl::string_view grpc_status;          // metric label, "" when not gRPC
  const router::Route* route = nullptr;   // outbound: destination_service is its virtual host
  const HostPool* host = nullptr;         // the host of the last try, or null
  absl::string_view source_workload;      // inbound: the caller (certificate or header)
  absl::string_view source_version;
  absl::string_view client_ip;
  const RequestTrace* trace = nullptr;    // its span is recorded when sampled
};

void RecordFinished(Worker& worker, ListenerStats& stats, FinishedRequest& request);

// The Istio labels of a request or a TCP relay, by direction: inbound, the caller (certificate or
// header) and this workload; outbound, this workload and the route's virtual host (else the
// cluster) with the answering host's version. Views into the arguments and the worker.
ListenerStats::LabelView PeerLabels(Worker& worker, bool inbound, absl::string_view cluster,
                                    const router::Route* route, const HostPool* host,
                                    absl::string_view source_workload,
                                    absl::string_view source_version,
                                    absl::string_view peer_identity);

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_SERVER_REQUEST_RECORD_H_
