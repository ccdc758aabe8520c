// See stats.h. Rendering follows the Prometheus text exposition format 0.0.4.
#include "proxy/server/stats.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace outrigger::proxy {

std::string ResponseFlagsString(uint16_t flags) {
  if (flags == 0) return "-";
  static constexpr std::pair<uint16_t, const char*> kNames[] = {
      {kNoRoute, "NR"},          {kNoHealthyUpstream, "UH"},  {kUpstreamConnectFailure, "UF"},
      {kUpstreamTermination, "UC"}, {kUpstreamTimeout, "UT"}, {kDownstreamTermination, "DC"},
      {kDownstreamProtocolError, "DPE"}, {kStreamIdleTimeout, "SI"},
      {kUpstreamProtocolError, "UPE"}, {kUpstreamOverflow, "UO"}, {kRateLimited, "RL"},
      {kFaultAbort, "FI"}, {kFaultDelay, "DI"}, {kRetryLimitExceeded, "URX"},
      {kRbacDenied, "RBAC"}};
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) absl::StrAppend(&out, out.empty() ? "" : ",", name);
  }
  return out;
}

void RequestSeries::Merge(const RequestSeries& o) {
  if (requests == 0 && labels.destination_service.empty()) labels = o.labels;
  requests += o.requests;
  duration.Merge(o.duration);
  request_bytes.Merge(o.request_bytes);
  response_bytes.Merge(o.response_bytes);
}

namespace {

// The series of `l` in `map`, created when new; beyond kMaxSeries label sets, the overflow series.
template <typename Series>
Series& FindSeries(absl::node_hash_map<std::string, Series>& map,
                   const ListenerStats::LabelView& l, uint64_t* overflowed, std::string* key) {
  key->clear();
  absl::StrAppend(key, l.source_workload, "\x1f", l.source_version, "\x1f",
                  l.destination_service, "\x1f", l.destination_version, "\x1f",
                  l.response_code, "\x1f", l.response_flags, l.mutual_tls ? "\x1fm" : "\x1fp",
                  l.grpc_status);
  auto it = map.find(*key);
  if (it != map.end()) return it->second;
  if (map.size() >= ListenerStats::kMaxSeries) {
    ++*overflowed;
    key->clear();
    absl::StrAppend(key, "overflow\x1f", l.response_code, "\x1f", l.response_flags,
                    l.mutual_tls ? "\x1fm" : "\x1fp");
    it = map.find(*key);
    if (it == map.end()) {
      Series series;
      series.labels = RequestLabels{"overflow", "overflow", "overflow", "overflow",
                                    l.response_code, l.response_flags, l.mutual_tls};
      it = map.emplace(*key, std::move(series)).first;
    }
    return it->second;
  }
  Series series;
  series.labels = RequestLabels{std::string(l.source_workload), std::string(l.source_version),
                                std::string(l.destination_service),
                                std::string(l.destination_version), l.response_code,
                                l.response_flags, l.mutual_tls, std::string(l.grpc_status)};
  return map.emplace(*key, std::move(series)).first->second;
}

}  // namespace

void ListenerStats::RecordRequest(const LabelView& l, double duration_ms,
                                  uint64_t request_bytes, uint64_t response_bytes,
                                  std::string* key) {
  RequestSeries& s = FindSeries(series, l, &series_overflow, key);
  ++s.requests;
  s.duration.Record(duration_ms);
  s.request_bytes.Record(static_cast<double>(request_bytes));
  s.response_bytes.Record(static_cast<double>(response_bytes));
}

TcpSeries& ListenerStats::TcpSeriesFor(const LabelView& l, std::string* key) {
  return FindSeries(tcp_series, l, &series_overflow, key);
}

void TcpSeries::Merge(const TcpSeries& o) {
  if (relays == 0 && labels.destination_service.empty()) labels = o.labels;
  relays += o.relays;
  received_bytes += o.received_bytes;
  sent_bytes += o.sent_bytes;
}

void ListenerStats::Merge(const ListenerStats& o) {
  if (reporter.empty()) reporter = o.reporter;
  for (const auto& [k, v] : o.series) series[k].Merge(v);
  for (const auto& [k, v] : o.tcp_series) tcp_series[k].Merge(v);
  series_overflow += o.series_overflow;
  cx_total += o.cx_total;
  cx_closed += o.cx_closed;
  cx_mutual_tls += o.cx_mutual_tls;
  tcp_relay_failures += o.tcp_relay_failures;
  cx_active += o.cx_active;
  rq_active += o.rq_active;
  tls_handshakes += o.tls_handshakes;
  tls_handshake_errors += o.tls_handshake_errors;
  tls_plaintext_refused += o.tls_plaintext_refused;
  authz_denied += o.authz_denied;
  authz_dry_run_denied += o.authz_dry_run_denied;
}

void ClusterStats::Merge(const ClusterStats& o) {
  cx_total += o.cx_total;
  cx_active += o.cx_active;
  cx_connect_fail += o.cx_connect_fail;
  tls_handshakes += o.tls_handshakes;
  tls_resumed += o.tls_resumed;
  tls_handshake_errors += o.tls_handshake_errors;
  rq_total += o.rq_total;
  rq_retry_stale += o.rq_retry_stale;
  rq_active += o.rq_active;
  rq_pending += o.rq_pending;
  rq_retry_active += o.rq_retry_active;
  rq_retry += o.rq_retry;
  rq_retry_success += o.rq_retry_success;
  rq_retry_overflow += o.rq_retry_overflow;
  rq_retry_budget_exhausted += o.rq_retry_budget_exhausted;
  rq_retry_limit_exceeded += o.rq_retry_limit_exceeded;
  rq_overflow += o.rq_overflow;
  rq_per_try_timeout += o.rq_per_try_timeout;
  rq_mirror += o.rq_mirror;
  rq_mirror_dropped += o.rq_mirror_dropped;
  outlier_ejections += o.outlier_ejections;
  panic += o.panic;
  hosts = std::max(hosts, o.hosts);
  hosts_ejected = std::max(hosts_ejected, o.hosts_ejected);
  hosts_unhealthy = std::max(hosts_unhealthy, o.hosts_unhealthy);
}

void WorkerStats::Merge(const WorkerStats& o) {
  for (const auto& [k, v] : o.listeners) listeners[k].Merge(v);
  for (const auto& [k, v] : o.clusters) clusters[k].Merge(v);
  spans_recorded += o.spans_recorded;
  spans_dropped += o.spans_dropped;
}

std::string WorkerStats::RenderPrometheus() const {
  std::string out;
  // Sorted so that scrapes are stable and diffable.
  std::map<std::string, const ListenerStats*> ls;
  for (const auto& [k, v] : listeners) ls[k] = &v;
  std::map<std::string, const ClusterStats*> cs;
  for (const auto& [k, v] : clusters) cs[k] = &v;

  // Istio's standard metrics, under outrigger_ names, with the listener added.
  auto label_text = [](absl::string_view listener, absl::string_view reporter,
                       const RequestLabels& l, bool http) {
    std::string text = absl::StrCat(
        "listener=\"", listener, "\",reporter=\"", reporter, "\",source_workload=\"",
        l.source_workload, "\",source_version=\"", l.source_version,
        "\",destination_service=\"", l.destination_service, "\",destination_version=\"",
        l.destination_version, "\",");
    if (http) absl::StrAppend(&text, "response_code=\"", l.response_code, "\",");
    absl::StrAppend(&text, "response_flags=\"", ResponseFlagsString(l.response_flags),
                    "\",connection_security_policy=\"", l.mutual_tls ? "mutual_tls" : "none",
                    "\"");
    if (http) absl::StrAppend(&text, ",grpc_response_status=\"", l.grpc_status, "\"");
    return text;
  };
  struct Row {
    std::string labels;
    const RequestSeries* series;
  };
  std::vector<Row> rows;
  struct TcpRow {
    std::string labels;
    const TcpSeries* series;
  };
  std::vector<TcpRow> tcp_rows;
  for (const auto& [name, s] : ls) {
    std::vector<Row> mine;
    for (const auto& [key, series] : s->series) {
      mine.push_back({label_text(name, s->reporter, series.labels, true), &series});
    }
    std::vector<TcpRow> tcp;
    for (const auto& [key, series] : s->tcp_series) {
      tcp.push_back({label_text(name, s->reporter, series.labels, false), &series});
    }
    std::sort(tcp.begin(), tcp.end(),
              [](const TcpRow& a, const TcpRow& b) { return a.labels < b.labels; });
    tcp_rows.insert(tcp_rows.end(), tcp.begin(), tcp.end());
    std::sort(mine.begin(), mine.end(),
              [](const Row& a, const Row& b) { return a.labels < b.labels; });
    rows.insert(rows.end(), mine.begin(), mine.end());
  }
  out += "# HELP outrigger_requests_total Requests completed (Istio's istio_requests_total).\n";
  out += "# TYPE outrigger_requests_total counter\n";
  for (const Row& r : rows) {
    absl::StrAppend(&out, "outrigger_requests_total{", r.labels, "} ", r.series->requests, "\n");
  }
  out += "# HELP outrigger_request_duration_milliseconds Time from the request's first byte to "
         "the response's last.\n# TYPE outrigger_request_duration_milliseconds histogram\n";
  for (const Row& r : rows) {
    r.series->duration.Render("outrigger_request_duration_milliseconds", r.labels, &out);
  }
  out += "# HELP outrigger_request_bytes Request body sizes.\n"
         "# TYPE outrigger_request_bytes histogram\n";
  for (const Row& r : rows) r.series->request_bytes.Render("outrigger_request_bytes", r.labels, &out);
  out += "# HELP outrigger_response_bytes Response sizes (head and body as sent).\n"
         "# TYPE outrigger_response_bytes histogram\n";
  for (const Row& r : rows) {
    r.series->response_bytes.Render("outrigger_response_bytes", r.labels, &out);
  }
  auto gauge_or_counter = [&](const char* metric, const char* type, const char* help, auto get) {
    absl::StrAppend(&out, "# HELP ", metric, " ", help, "\n# TYPE ", metric, " ", type, "\n");
    for (const auto& [name, s] : ls) {
      absl::StrAppend(&out, metric, "{listener=\"", name, "\",reporter=\"", s->reporter, "\"} ",
                      get(*s), "\n");
    }
  };
  gauge_or_counter("outrigger_tcp_connections_opened_total", "counter",
                   "Downstream connections accepted.",
                   [](const ListenerStats& s) { return s.cx_total; });
  gauge_or_counter("outrigger_tcp_connections_closed_total", "counter",
                   "Downstream connections closed.",
                   [](const ListenerStats& s) { return s.cx_closed; });
  gauge_or_counter("outrigger_tcp_connections_mutual_tls_total", "counter",
                   "Downstream connections that presented a mesh certificate.",
                   [](const ListenerStats& s) { return s.cx_mutual_tls; });
  // Raw TCP relays with Istio's labels (istio_tcp_*), as requests have them.
  auto tcp_metric = [&](const char* metric, const char* help, auto get) {
    absl::StrAppend(&out, "# HELP ", metric, " ", help, "\n# TYPE ", metric, " counter\n");
    for (const TcpRow& r : tcp_rows) {
      absl::StrAppend(&out, metric, "{", r.labels, "} ", get(*r.series), "\n");
    }
  };
  tcp_metric("outrigger_tcp_relays_total",
             "Connections relayed as raw TCP (declared TCP, or not HTTP by detection).",
             [](const TcpSeries& s) { return s.relays; });
  tcp_metric("outrigger_tcp_received_bytes_total", "Raw TCP bytes received from clients.",
             [](const TcpSeries& s) { return s.received_bytes; });
  tcp_metric("outrigger_tcp_sent_bytes_total", "Raw TCP bytes sent to clients.",
             [](const TcpSeries& s) { return s.sent_bytes; });
  gauge_or_counter("outrigger_tcp_relay_failures_total", "counter",
                   "Raw TCP connections closed because no upstream could be reached.",
                   [](const ListenerStats& s) { return s.tcp_relay_failures; });
  gauge_or_counter("outrigger_metrics_series_overflow_total", "counter",
                   "Requests (and TCP relays) counted under the \"overflow\" labels because the "
                   "listener already had the most label sets allowed.",
                   [](const ListenerStats& s) { return s.series_overflow; });
  gauge_or_counter("outrigger_downstream_cx_total", "counter", "Downstream connections accepted.",
                   [](const ListenerStats& s) { return s.cx_total; });
  gauge_or_counter("outrigger_downstream_cx_active", "gauge", "Downstream connections open.",
                   [](const ListenerStats& s) { return s.cx_active; });
  gauge_or_counter("outrigger_downstream_rq_active", "gauge", "Requests in flight.",
                   [](const ListenerStats& s) { return s.rq_active; });
  gauge_or_counter("outrigger_downstream_tls_handshakes_total", "counter",
                   "Inbound mTLS handshakes completed.",
                   [](const ListenerStats& s) { return s.tls_handshakes; });
  gauge_or_counter("outrigger_downstream_tls_handshake_errors_total", "counter",
                   "Inbound TLS handshakes that failed (no, foreign or expired certificate...).",
                   [](const ListenerStats& s) { return s.tls_handshake_errors; });
  gauge_or_counter("outrigger_downstream_tls_plaintext_refused_total", "counter",
                   "Connections refused by STRICT mTLS (plaintext, or TLS without a certificate).",
                   [](const ListenerStats& s) { return s.tls_plaintext_refused; });
  gauge_or_counter("outrigger_authz_denied_total", "counter",
                   "Requests denied by authorization policy (403, flag RBAC).",
                   [](const ListenerStats& s) { return s.authz_denied; });
  gauge_or_counter("outrigger_authz_dry_run_denied_total", "counter",
                   "Requests a dry-run authorization policy would have denied (not denied).",
                   [](const ListenerStats& s) { return s.authz_dry_run_denied; });
  auto cluster_metric = [&](const char* metric, const char* type, const char* help, auto get) {
    absl::StrAppend(&out, "# HELP ", metric, " ", help, "\n# TYPE ", metric, " ", type, "\n");
    for (const auto& [name, s] : cs) {
      absl::StrAppend(&out, metric, "{cluster=\"", name, "\"} ", get(*s), "\n");
    }
  };
  cluster_metric("outrigger_upstream_cx_total", "counter", "Upstream connections opened.",
                 [](const ClusterStats& s) { return s.cx_total; });
  cluster_metric("outrigger_upstream_cx_active", "gauge", "Upstream connections open.",
                 [](const ClusterStats& s) { return s.cx_active; });
  cluster_metric("outrigger_upstream_cx_connect_fail_total", "counter",
                 "Upstream connection attempts that failed.",
                 [](const ClusterStats& s) { return s.cx_connect_fail; });
  cluster_metric("outrigger_upstream_tls_handshakes_total", "counter",
                 "mTLS handshakes with mesh peers.",
                 [](const ClusterStats& s) { return s.tls_handshakes; });
  cluster_metric("outrigger_upstream_tls_resumed_total", "counter",
                 "mTLS handshakes that resumed an earlier session.",
                 [](const ClusterStats& s) { return s.tls_resumed; });
  cluster_metric("outrigger_upstream_tls_handshake_errors_total", "counter",
                 "mTLS handshakes that failed or met a peer with the wrong identity.",
                 [](const ClusterStats& s) { return s.tls_handshake_errors; });
  cluster_metric("outrigger_upstream_rq_total", "counter", "Requests sent upstream.",
                 [](const ClusterStats& s) { return s.rq_total; });
  cluster_metric("outrigger_upstream_rq_stale_retry_total", "counter",
                 "Requests replayed on a fresh connection after a pooled one was found closed.",
                 [](const ClusterStats& s) { return s.rq_retry_stale; });
  cluster_metric("outrigger_upstream_rq_active", "gauge", "Requests in flight to the cluster.",
                 [](const ClusterStats& s) { return s.rq_active; });
  cluster_metric("outrigger_upstream_rq_pending_active", "gauge",
                 "Requests waiting for a new upstream connection.",
                 [](const ClusterStats& s) { return s.rq_pending; });
  cluster_metric("outrigger_upstream_rq_retry_total", "counter", "Retries sent.",
                 [](const ClusterStats& s) { return s.rq_retry; });
  cluster_metric("outrigger_upstream_rq_retry_success_total", "counter",
                 "Requests that succeeded on a retry.",
                 [](const ClusterStats& s) { return s.rq_retry_success; });
  cluster_metric("outrigger_upstream_rq_retry_overflow_total", "counter",
                 "Retries not sent because the max_retries circuit breaker was full.",
                 [](const ClusterStats& s) { return s.rq_retry_overflow; });
  cluster_metric("outrigger_upstream_rq_retry_budget_exhausted_total", "counter",
                 "Retries not sent because the retry budget was spent.",
                 [](const ClusterStats& s) { return s.rq_retry_budget_exhausted; });
  cluster_metric("outrigger_upstream_rq_retry_limit_exceeded_total", "counter",
                 "Retriable failures answered because no retry was left.",
                 [](const ClusterStats& s) { return s.rq_retry_limit_exceeded; });
  cluster_metric("outrigger_upstream_rq_overflow_total", "counter",
                 "Requests refused at once by a circuit breaker (503, flag UO).",
                 [](const ClusterStats& s) { return s.rq_overflow; });
  cluster_metric("outrigger_upstream_rq_per_try_timeout_total", "counter",
                 "Tries that hit the per-try timeout.",
                 [](const ClusterStats& s) { return s.rq_per_try_timeout; });
  cluster_metric("outrigger_upstream_rq_mirror_total", "counter", "Mirror copies sent.",
                 [](const ClusterStats& s) { return s.rq_mirror; });
  cluster_metric("outrigger_upstream_rq_mirror_dropped_total", "counter",
                 "Mirror copies not sent (breaker full, body too large) or failed.",
                 [](const ClusterStats& s) { return s.rq_mirror_dropped; });
  cluster_metric("outrigger_outlier_ejections_total", "counter",
                 "Hosts ejected by outlier detection (per worker: each worker ejects on its own).",
                 [](const ClusterStats& s) { return s.outlier_ejections; });
  cluster_metric("outrigger_upstream_panic_total", "counter",
                 "Picks made in panic mode (too few healthy hosts: all hosts used).",
                 [](const ClusterStats& s) { return s.panic; });
  cluster_metric("outrigger_cluster_hosts", "gauge", "Hosts in the cluster.",
                 [](const ClusterStats& s) { return s.hosts; });
  cluster_metric("outrigger_cluster_hosts_ejected", "gauge",
                 "Hosts ejected by outlier detection (the most on any worker).",
                 [](const ClusterStats& s) { return s.hosts_ejected; });
  cluster_metric("outrigger_cluster_hosts_unhealthy", "gauge",
                 "Hosts failing active health checks.",
                 [](const ClusterStats& s) { return s.hosts_unhealthy; });
  absl::StrAppend(&out,
                  "# HELP outrigger_tracing_spans_total Spans recorded.\n"
                  "# TYPE outrigger_tracing_spans_total counter\noutrigger_tracing_spans_total ",
                  spans_recorded,
                  "\n# HELP outrigger_tracing_spans_dropped_total Spans dropped because a "
                  "worker's buffer was full.\n# TYPE outrigger_tracing_spans_dropped_total "
                  "counter\noutrigger_tracing_spans_dropped_total ",
                  spans_dropped, "\n");
  return out;
}

}  // namespace outrigger::proxy
