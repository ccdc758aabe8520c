// See admin_server.h.
#include "proxy/server/admin_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/string_view.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/server/cluster_status.h"
#include "proxy/config/snapshot.h"
#include "proxy/server/proxy_server.h"
#include "proxy/server/span_exporter.h"

namespace outrigger::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

AdminServer::AdminServer(ProxyServer& server)
    : server_(server), acceptor_(server.io_context()) {}

absl::StatusOr<std::string> AdminServer::Listen(const std::string& address) {
  auto parsed = ParseAddress(address);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--admin: ", parsed.status().message()));
  }
  boost::system::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(parsed->ip, ec), parsed->port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("admin: cannot listen on ", address, ": ",
                                               ec.message()));
  }
  asio::co_spawn(acceptor_.get_executor(), Accept(), asio::detached);
  Address bound = *parsed;
  bound.port = acceptor_.local_endpoint().port();
  return bound.ToString();
}

void AdminServer::Close() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

asio::awaitable<void> AdminServer::Accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor_.get_executor(), Serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> AdminServer::Serve(tcp::socket socket) {
  boost::beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(socket, buffer, req,
                                             asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    res.set(http::field::server, "outrigger-admin");
    res.set(http::field::content_type, "text/plain");
    const absl::string_view target(req.target().data(), req.target().size());
    const absl::string_view path = target.substr(0, target.find('?'));
    if (path == "/ready") {
      const bool ready = server_.ready();
      res.result(ready ? http::status::ok : http::status::service_unavailable);
      res.body() = ready ? "ready\n" : server_.draining() ? "draining\n" : "waiting for config\n";
    } else if (path == "/metrics") {
      WorkerStats stats = co_await server_.CollectStats();
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = stats.RenderPrometheus();
      absl::StrAppend(&res.body(),
                      "# HELP outrigger_server_draining 1 while the proxy drains.\n"
                      "# TYPE outrigger_server_draining gauge\noutrigger_server_draining ",
                      server_.draining() ? 1 : 0, "\n");
      if (const IdentityClient* id = server_.identity()) {
        absl::StrAppend(
            &res.body(),
            "# HELP outrigger_certificate_expiry_timestamp_seconds When this workload's "
            "certificate expires (0 before the first one).\n"
            "# TYPE outrigger_certificate_expiry_timestamp_seconds gauge\n"
            "outrigger_certificate_expiry_timestamp_seconds{spiffe_id=\"",
            id->spiffe_id().ToString(), "\"} ",
            id->current() ? absl::ToUnixSeconds(id->current()->not_after) : 0,
            "\n# HELP outrigger_certificate_renewals_total Certificates renewed.\n"
            "# TYPE outrigger_certificate_renewals_total counter\n"
            "outrigger_certificate_renewals_total ", id->renewals(),
            "\n# HELP outrigger_certificate_request_failures_total Certificate requests that "
            "failed (retried with backoff).\n"
            "# TYPE outrigger_certificate_request_failures_total counter\n"
            "outrigger_certificate_request_failures_total ", id->failures(), "\n");
      }
      const auto& d = server_.discovery_stats();
      if (d.enabled) {
        absl::StrAppend(&res.body(),
                        "# HELP outrigger_xds_connected 1 while the stream to the control plane "
                        "is up.\n# TYPE outrigger_xds_connected gauge\noutrigger_xds_connected ",
                        d.connected ? 1 : 0,
                        "\n# HELP outrigger_xds_updates_total Config updates accepted.\n"
                        "# TYPE outrigger_xds_updates_total counter\noutrigger_xds_updates_total ",
                        d.updates,
                        "\n# HELP outrigger_xds_rejected_total Config updates rejected (NACK).\n"
                        "# TYPE outrigger_xds_rejected_total counter\n"
                        "outrigger_xds_rejected_total ",
                        d.rejected,
                        "\n# HELP outrigger_xds_last_rejected_timestamp_seconds When the control "
                        "plane's config was last rejected (0: never); the reason is in the log "
                        "and in `outrigger proxy-status`.\n"
                        "# TYPE outrigger_xds_last_rejected_timestamp_seconds gauge\n"
                        "outrigger_xds_last_rejected_timestamp_seconds ",
                        d.rejected == 0 ? 0 : absl::ToUnixSeconds(d.last_rejected_at),
                        "\n# HELP outrigger_xds_version_info The config version applied, per "
                        "resource type.\n# TYPE outrigger_xds_version_info gauge\n");
        for (const auto& [type, version] : d.versions) {
          absl::StrAppend(&res.body(), "outrigger_xds_version_info{type_url=\"", type,
                          "\",version=\"", version, "\"} 1\n");
        }
      }
      if (const SpanExporter* e = server_.span_exporter()) {
        absl::StrAppend(&res.body(),
                        "# HELP outrigger_tracing_spans_exported_total Spans the collector "
                        "accepted.\n# TYPE outrigger_tracing_spans_exported_total counter\n"
                        "outrigger_tracing_spans_exported_total ", e->exported(),
                        "\n# HELP outrigger_tracing_spans_failed_total Spans in batches the "
                        "collector did not take (unreachable, or not 2xx).\n"
                        "# TYPE outrigger_tracing_spans_failed_total counter\n"
                        "outrigger_tracing_spans_failed_total ", e->failed(),
                        "\n# HELP outrigger_tracing_export_queue_dropped_total Spans dropped "
                        "because the export queue was full.\n"
                        "# TYPE outrigger_tracing_export_queue_dropped_total counter\n"
                        "outrigger_tracing_export_queue_dropped_total ", e->dropped(),
                        "\n# HELP outrigger_tracing_export_queue_spans Spans waiting to be "
                        "sent.\n# TYPE outrigger_tracing_export_queue_spans gauge\n"
                        "outrigger_tracing_export_queue_spans ", e->queued(), "\n");
      }
    } else if (path == "/clusters") {
      auto per_worker = co_await server_.CollectHostStatus();
      const bool json = absl::StrContains(target, "format=json");
      res.result(http::status::ok);
      if (json) res.set(http::field::content_type, "application/json");
      res.body() = RenderClusters(per_worker, json);
    } else if (path == "/config_dump") {
      res.result(http::status::ok);
      res.set(http::field::content_type, "application/json");
      auto snap = server_.snapshot();
      res.body() = absl::StrCat("{\"version\":", snap->version,
                                ",\"config\":", snap->config_dump_json, "}\n");
    } else if (path == "/quitquitquit") {
      if (req.method() != http::verb::post) {
        res.result(http::status::method_not_allowed);
        res.body() = "use POST\n";
      } else {
        res.result(http::status::ok);
        res.body() = "OK\n";
        res.keep_alive(false);
        server_.BeginDrain("/quitquitquit");
      }
    } else if (path == "/") {
      res.result(http::status::ok);
      res.body() =
          "outrigger-proxy admin\n  /ready\n  /metrics\n  /clusters[?format=json]\n  /config_dump\n"
          "  POST /quitquitquit\n";
    } else {
      res.result(http::status::not_found);
      res.body() = "not found; see /\n";
    }
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !res.keep_alive()) co_return;
  }
}

}  // namespace outrigger::proxy
