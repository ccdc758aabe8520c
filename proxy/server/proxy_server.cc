// See proxy_server.h.
#include "proxy/server/proxy_server.h"

#include "proxy/server/span_exporter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

#include "absl/strings/string_view.h"
#include "absl/strings/str_cat.h"
#include "outrigger/v1/discovery.pb.h"
#include "proxy/server/admin_server.h"
#include "proxy/xds/ads_client.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;

namespace {

// A listening TCP socket with SO_REUSEPORT, so that every worker can have its own and the kernel
// spreads connections across them.
absl::StatusOr<int> ListenSocket(const Address& address, uint16_t port) {
  const bool v6 = address.ip.find(':') != std::string::npos;
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(port);
    inet_pton(AF_INET6, address.ip.c_str(), &sa->sin6_addr);
    len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    inet_pton(AF_INET, address.ip.c_str(), &sa->sin_addr);
    len = sizeof(*sa);
  }
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address.ip, ":", port, ": ",
                                               err));
  }
  return fd;
}

uint16_t BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace

ProxyServer::ProxyServer(ServerOptions options) : options_(std::move(options)) {}

ProxyServer::~ProxyServer() {
  if (exporter_) exporter_->Stop();
  if (identity_) identity_->Stop();
  if (ads_) ads_->Stop();
  health_checker_.reset();
  for (auto& w : workers_) w->Stop();
}

absl::Status ProxyServer::Start(std::shared_ptr<const Snapshot> snapshot) {
  snapshot_ = std::move(snapshot);
  const TelemetryOptions& t = options_.telemetry;
  if (!t.tracing_endpoint.empty()) {
    auto url = ParseCollectorUrl(t.tracing_endpoint, t.tracing_format);
    if (!url.ok()) return url.status();
    exporter_ = std::make_unique<SpanExporter>(
        ioc_, *url, t.tracing_format,
        tracing::SpanSource{t.service.empty() ? "outrigger-proxy" : t.service, t.node_id});
    exporter_->Start();
    LogInfo("tracing: ", t.tracing_format == tracing::Format::kZipkin ? "Zipkin" : "OTLP",
            " spans to ", t.tracing_endpoint, ", ", t.tracing_sampling, "% of new traces");
  }
  for (int i = 0; i < options_.concurrency; ++i) {
    workers_.push_back(
        std::make_unique<Worker>(i, options_.concurrency, options_.telemetry, exporter_.get()));
  }
  // Per worker, the sockets of every listener.
  std::vector<std::vector<ListenerSocket>> sockets(workers_.size());
  for (const ListenerConfig& l : snapshot_->listeners) {
    uint16_t port = l.address.port;
    for (size_t w = 0; w < workers_.size(); ++w) {
      auto fd = ListenSocket(l.address, port);
      if (!fd.ok()) {
        return absl::UnavailableError(absl::StrCat("listener '", l.name, "': ",
                                                   fd.status().message()));
      }
      port = BoundPort(*fd);
      sockets[w].push_back({l.name, *fd, l.address.ip.find(':') != std::string::npos});
    }
    Address bound = l.address;
    bound.port = port;
    bound_[l.name] = bound.ToString();
    LogInfo("listening name=", l.name, " address=", bound.ToString());
  }
  if (!options_.admin_address.empty()) {
    admin_ = std::make_unique<AdminServer>(*this);
    auto bound = admin_->Listen(options_.admin_address);
    if (!bound.ok()) return bound.status();
    LogInfo("listening name=admin address=", *bound);
  }
  for (size_t w = 0; w < workers_.size(); ++w) {
    asio::post(workers_[w]->io_context(),
               [worker = workers_[w].get(), snap = snapshot_, add = std::move(sockets[w])]() {
                 worker->ApplySnapshot(snap, add);
               });
    workers_[w]->Start();
  }
  // Active health checks run here, once per proxy; verdicts go to every worker.
  health_checker_ = std::make_unique<HealthChecker>(
      ioc_, [this](const std::string& cluster, const Address& host, bool failed) {
        for (auto& w : workers_) {
          asio::post(w->io_context(), [worker = w.get(), cluster, host, failed] {
            worker->clusters().SetHealthCheckFailed(cluster, host, failed);
          });
        }
      });
  health_checker_->Update(*snapshot_);
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (!ec) BeginDrain(sig == SIGTERM ? "SIGTERM" : "SIGINT");
  });
  return absl::OkStatus();
}

int ProxyServer::Run() {
  ioc_.run();
  return 0;
}

void ProxyServer::BeginDrain(absl::string_view why) {
  if (draining_) return;
  draining_ = true;
  LogInfo("draining (", why, "): no new connections; waiting up to ",
          absl::FormatDuration(options_.drain_timeout), " for requests in flight");
  for (auto& w : workers_) {
    asio::post(w->io_context(), [worker = w.get()] { worker->BeginDrain(); });
  }
  asio::co_spawn(ioc_, WaitForDrain(), asio::detached);
}

asio::awaitable<void> ProxyServer::WaitForDrain() {
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.drain_timeout);
  asio::steady_timer timer(ioc_);
  int open = 0;
  for (;;) {
    open = 0;
    for (auto& w : workers_) open += w->active_sessions();
    if (open == 0 || std::chrono::steady_clock::now() >= deadline) break;
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(asio::use_awaitable);
  }
  if (open == 0) {
    LogInfo("drained: every connection finished");
  } else {
    LogWarning("drain timeout: closing ", open, " connection(s) still open");
  }
  if (health_checker_) health_checker_->Stop();
  for (auto& w : workers_) w->Stop();  // each hands its last spans to the exporter
  if (exporter_) {
    // A last chance for the spans of the final requests (bounded: the collector may be gone).
    const auto spans_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    do {
      timer.expires_after(std::chrono::milliseconds(20));
      co_await timer.async_wait(asio::use_awaitable);
    } while (!exporter_->idle() && std::chrono::steady_clock::now() < spans_deadline);
    exporter_->Stop();
  }
  if (admin_) admin_->Close();
  signals_.cancel();
  ioc_.stop();
}

void ProxyServer::EnableDiscovery(std::string server, v1::Node node, v1::Bootstrap local,
                                  std::string bundle_pem, std::string join_token) {
  local_ = std::move(local);
  ready_ = false;
  discovery_.enabled = true;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!bundle_pem.empty()) {
    // Identity first: the discovery stream needs the workload certificate.
    auto client = IdentityClient::Create(
        ioc_, server, bundle_pem, join_token, node.id(),
        [this, server, node](const WorkloadCertificate& cert) {
          // The data path's mTLS contexts first, then the control-plane connection.
          if (auto tls = MakeTlsState(cert.identity.key_pem, cert.identity.chain_pem,
                                      cert.bundle_pem);
              tls.ok()) {
            for (auto& w : workers_) {
              asio::post(w->io_context(), [worker = w.get(), state = *tls]() {
                worker->SetTls(state);
              });
            }
          } else {
            LogError("certificate from the mesh CA unusable for mTLS: ", tls.status().message());
          }
          auto creds = xds::MeshChannelCredentials(
              cert.bundle_pem,
              xds::ControlPlaneSpiffeId(identity_->spiffe_id().trust_domain), cert.identity);
          if (ads_) {
            ads_->SetCredentials(std::move(creds));
          } else {
            StartAds(server, node, std::move(creds));
          }
        });
    if (!client.ok()) {
      LogError("--join-token: ", client.status().message());
      BeginDrain("no identity");
      return;
    }
    identity_ = *std::move(client);
    LogInfo("identity ", identity_->spiffe_id().ToString(), ": asking the mesh CA at ", server);
    identity_->Start();
    return;
  }
  StartAds(server, std::move(node), nullptr);
}

void ProxyServer::StartAds(const std::string& server, v1::Node node,
                           std::shared_ptr<grpc::ChannelCredentials> credentials) {
  ads_ = std::make_unique<AdsClient>(
      ioc_, server, std::move(node),
      [this](const v1::DiscoveryResponse& r) { OnDiscoveryResponse(r); },
      [this, server](bool connected, const std::string& detail) {
        discovery_.connected = connected;
        if (connected) {
          LogInfo("control plane ", server, ": connected");
        } else {
          LogWarning("control plane: ", detail, "; serving the last accepted config");
        }
      },
      std::move(credentials));
  ads_->Start();
}

namespace {

// Replaces the resources of `type_url` in `state` with those of `response`.
absl::Status Adopt(const v1::DiscoveryResponse& response, v1::Bootstrap* state) {
  const std::string& type = response.type_url();
  auto unpack = [&](auto* list) -> absl::Status {
    list->Clear();
    for (int i = 0; i < response.resources_size(); ++i) {
      if (!response.resources(i).UnpackTo(list->Add())) {
        return absl::InvalidArgumentError(
            absl::StrCat("resources[", i, "]: not a ", type, " (it is ",
                         response.resources(i).type_url(), ")"));
      }
    }
    return absl::OkStatus();
  };
  if (type == kClusterType) return unpack(state->mutable_clusters());
  if (type == kEndpointType) return unpack(state->mutable_endpoints());
  if (type == kRouteType) return unpack(state->mutable_routes());
  if (type == kInboundPolicyType) {
    state->clear_inbound_policy();
    if (response.resources_size() > 1) {
      return absl::InvalidArgumentError("at most one InboundPolicy resource per proxy");
    }
    if (response.resources_size() == 1 &&
        !response.resources(0).UnpackTo(state->mutable_inbound_policy())) {
      return absl::InvalidArgumentError(absl::StrCat("resources[0]: not a ", type));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown resource type ", type));
}

}  // namespace

void ProxyServer::OnDiscoveryResponse(const v1::DiscoveryResponse& response) {
  v1::Bootstrap candidate = accepted_;
  absl::Status status = Adopt(response, &candidate);
  std::shared_ptr<const Snapshot> snapshot;
  if (status.ok()) {
    v1::Bootstrap merged = local_;
    merged.MergeFrom(candidate);
    auto built = BuildSnapshot(merged, next_version_, /*lenient_references=*/true);
    if (built.ok()) {
      snapshot = *built;
    } else {
      status = built.status();
    }
  }
  if (!status.ok()) {
    ++discovery_.rejected;
    discovery_.last_rejected_at = absl::Now();
    discovery_.last_error = absl::StrCat(response.type_url(), " version ",
                                         response.version_info(), ": ", status.message());
    LogWarning("rejected config from the control plane: ", discovery_.last_error);
    ads_->Nack(response, std::string(status.message()));
    return;
  }
  ++next_version_;
  accepted_ = std::move(candidate);
  ++discovery_.updates;
  discovery_.versions[response.type_url()] = response.version_info();
  ads_->Ack(response);
  Publish(std::move(snapshot));
  // Ready once the three types that route traffic arrived (InboundPolicy is optional: a control
  // plane that does not know it never answers that subscription).
  if (!ready_ && discovery_.versions.contains(kClusterType) &&
      discovery_.versions.contains(kEndpointType) && discovery_.versions.contains(kRouteType)) {
    ready_ = true;
    LogInfo("config from the control plane complete: ready");
  }
}

void ProxyServer::Publish(std::shared_ptr<const Snapshot> snapshot) {
  snapshot_ = snapshot;
  if (health_checker_ && !draining_) health_checker_->Update(*snapshot_);
  for (auto& w : workers_) {
    asio::post(w->io_context(), [worker = w.get(), snapshot]() {
      worker->ApplySnapshot(snapshot, {});
    });
  }
}

asio::awaitable<WorkerStats> ProxyServer::CollectStats() {
  WorkerStats total;
  for (auto& w : workers_) {
    WorkerStats one = co_await asio::co_spawn(
        w->io_context(),
        [worker = w.get()]() -> asio::awaitable<WorkerStats> { co_return worker->stats(); },
        asio::use_awaitable);
    total.Merge(one);
  }
  co_return total;
}

asio::awaitable<std::vector<std::vector<HostStatus>>> ProxyServer::CollectHostStatus() {
  std::vector<std::vector<HostStatus>> out;
  for (auto& w : workers_) {
    out.push_back(co_await asio::co_spawn(
        w->io_context(),
        [worker = w.get()]() -> asio::awaitable<std::vector<HostStatus>> {
          co_return worker->clusters().Status(std::chrono::steady_clock::now());
        },
        asio::use_awaitable));
  }
  co_return out;
}

}  // namespace outrigger::proxy
