// See control_plane.h.
#include "controlplane/server/control_plane.h"

#include "xds/grpc_tls.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <future>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "controlplane/policy/backend_weights.h"
#include "controlplane/policy/loader.h"
#include "outrigger/v1/admin.grpc.pb.h"
#include "xds/common/log.h"

namespace outrigger::controlplane {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;

namespace {

const char* StateName(TypeStatus::State s) {
  switch (s) {
    case TypeStatus::State::kSynced: return "SYNCED";
    case TypeStatus::State::kStale: return "STALE";
    case TypeStatus::State::kNacked: return "NACKED";
    case TypeStatus::State::kNotSent: return "NOT_SENT";
  }
  return "?";
}

// Runs `f` on the control loop and waits for its result (admin RPCs run on gRPC's threads).
template <typename F>
auto OnLoop(asio::io_context& ioc, F f) -> decltype(f()) {
  std::promise<decltype(f())> promise;
  auto future = promise.get_future();
  asio::post(ioc, [&]() { promise.set_value(f()); });
  return future.get();
}

}  // namespace

// The CLI's RPCs.
class ControlPlane::AdminService final : public v1::MeshAdmin::Service {
 public:
  explicit AdminService(ControlPlane* cp) : cp_(cp) {}

  grpc::Status ProxyStatus(grpc::ServerContext*, const v1::ProxyStatusRequest*,
                           v1::ProxyStatusResponse* out) override {
    *out = OnLoop(cp_->ioc_, [this]() {
      v1::ProxyStatusResponse r;
      r.set_policy_version(cp_->policy_version_);
      r.set_policy_error(cp_->policy_error_);
      std::map<std::string, IssuedCertificate> issued;
      if (cp_->certificates_) {
        issued = cp_->certificates_->Issued();
        r.set_ca_not_after(absl::ToUnixSeconds(cp_->identity_->ca().chain()[0].not_after()));
      }
      for (const auto& p : cp_->discovery_->Status()) {
        auto* e = r.add_proxies();
        *e->mutable_node() = p.node;
        e->set_connected(p.connected);
        if (auto it = issued.find(p.node.id()); it != issued.end()) {
          e->set_spiffe_id(it->second.spiffe_id);
          e->set_certificate_not_after(absl::ToUnixSeconds(it->second.not_after));
        }
        for (const auto& t : p.types) {
          auto* ts = e->add_types();
          ts->set_type_url(t.type_url);
          ts->set_sent_version(t.sent_version);
          ts->set_acked_version(t.acked_version);
          ts->set_state(StateName(t.state));
          ts->set_nack_error(t.nack_error);
        }
      }
      return r;
    });
    return grpc::Status::OK;
  }

  grpc::Status SetWeights(grpc::ServerContext*, const v1::SetWeightsRequest* req,
                          v1::SetWeightsResponse* out) override {
    std::map<std::string, int64_t> weights(req->weights().begin(), req->weights().end());
    // The file is rewritten (atomically, validated whole) before we answer, so the change
    // survives a restart of the control plane right after the CLI returns.
    absl::Status s = OnLoop(cp_->ioc_, [&]() -> absl::Status {
      policy::PolicySet written;  // validated whole and on disk: adopted without reading again
      absl::Status w = policy::SetBackendWeights(
          cp_->options_.policy_path, req->namespace_().empty() ? "default" : req->namespace_(),
          req->route(), weights, &written);
      if (!w.ok()) return w;
      cp_->fingerprint_ = cp_->Fingerprint();  // our own write is not a change to reload
      cp_->policy_error_.clear();
      cp_->Adopt(std::move(written), "outrigger canary");
      return absl::OkStatus();
    });
    if (!s.ok()) {
      const auto code = absl::IsNotFound(s)  ? grpc::StatusCode::NOT_FOUND
                        : absl::IsAborted(s) ? grpc::StatusCode::ABORTED
                                             : grpc::StatusCode::INVALID_ARGUMENT;
      return grpc::Status(code, std::string(s.message()));
    }
    out->set_policy_version(OnLoop(cp_->ioc_, [this]() { return cp_->policy_version_; }));
    out->set_file(cp_->options_.policy_path);
    return grpc::Status::OK;
  }

 private:
  ControlPlane* cp_;
};

// /ready and /metrics.
class ControlPlane::HttpAdmin {
 public:
  explicit HttpAdmin(ControlPlane* cp) : cp_(cp), acceptor_(cp->ioc_) {}

  absl::StatusOr<std::string> Listen(const std::string& address) {
    const size_t colon = address.rfind(':');
    boost::system::error_code ec;
    uint32_t port = 0;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(address).substr(colon + 1), &port) || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("--admin '", address, "': expected IP:PORT"));
    }
    auto ip = asio::ip::make_address(address.substr(0, colon), ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("--admin '", address, "': '", address.substr(0, colon),
                       "' is not an IP address"));
    }
    tcp::endpoint ep(ip, static_cast<uint16_t>(port));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("admin ", address, ": ", ec.message()));
    asio::co_spawn(cp_->ioc_, Accept(), asio::detached);
    return absl::StrCat(address.substr(0, colon), ":", acceptor_.local_endpoint().port());
  }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(cp_->ioc_, Serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      auto [ec, n] = co_await bhttp::async_read(socket, buffer, req,
                                                asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
      res.keep_alive(req.keep_alive());
      res.set(bhttp::field::content_type, "text/plain");
      const std::string target(req.target());
      if (target == "/ready") {
        res.body() = "ready\n";
      } else if (target == "/metrics") {
        res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
        res.body() = cp_->RenderMetrics();
      } else {
        res.result(bhttp::status::not_found);
        res.body() = "see /ready and /metrics\n";
      }
      res.prepare_payload();
      auto [wec, wn] = co_await bhttp::async_write(socket, res,
                                                   asio::as_tuple(asio::use_awaitable));
      if (wec || !res.keep_alive()) co_return;
    }
  }

  ControlPlane* cp_;
  tcp::acceptor acceptor_;
};

ControlPlane::ControlPlane(ControlOptions options) : options_(std::move(options)) {}

ControlPlane::~ControlPlane() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

absl::Status ControlPlane::Start() {
  fingerprint_ = Fingerprint();
  auto policy = policy::LoadPolicy(options_.policy_path);
  if (!policy.ok()) return policy.status();
  policy_version_ = policy->version;
  options_.discovery.endpoint_grace = std::chrono::milliseconds(
      absl::ToInt64Milliseconds(policy->mesh.endpoint_grace_period));
  views_.SetPolicy(std::make_shared<const policy::PolicySet>(*std::move(policy)));
  LogInfo("policy ", options_.policy_path, " version ", policy_version_, " loaded");

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!options_.identity.ca_dir.empty()) {
    // The trust domain is the policy's (Mesh.spec.trustDomain); it is fixed at start.
    options_.identity.trust_domain = views_.policy()->mesh.trust_domain;
    auto identity = MeshIdentity::Open(options_.identity, absl::Now());
    if (!identity.ok()) return identity.status();
    identity_ = *std::move(identity);
    certificates_ = std::make_unique<CertificateService>(identity_.get());
    credentials = xds::MeshServerCredentials(identity_->bundle_pem(),
                                             identity_->server_identity());
    options_.discovery.require_identity = true;
    options_.discovery.trust_domain = identity_->trust_domain();
    views_.SetTrustDomain(identity_->trust_domain());
  }
  discovery_ = std::make_unique<DiscoveryServer>(
      ioc_,
      [this](const v1::Node& node, const std::map<std::string, Workload>& workloads,
             uint64_t generation) { return views_.Build(node, workloads, generation); },
      options_.discovery);
  admin_service_ = std::make_unique<AdminService>(this);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.xds_address, credentials, &port);
  // Proxies ping every 10 s to notice a lost control plane; accept that without GOAWAY.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.RegisterService(discovery_.get());
  builder.RegisterService(admin_service_.get());
  if (certificates_) builder.RegisterService(certificates_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    return absl::UnavailableError(absl::StrCat("--xds: cannot listen on ", options_.xds_address));
  }
  const std::string host = options_.xds_address.substr(0, options_.xds_address.rfind(':'));
  LogInfo("listening name=xds address=", host, ":", port);
  if (!options_.admin_address.empty()) {
    http_ = std::make_unique<HttpAdmin>(this);
    auto bound = http_->Listen(options_.admin_address);
    if (!bound.ok()) return bound.status();
    LogInfo("listening name=admin address=", *bound);
  }
  Watch();
  return absl::OkStatus();
}

int ControlPlane::Run() {
  asio::signal_set signals(ioc_, SIGTERM, SIGINT);
  signals.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    LogInfo("stopping");
    ioc_.stop();
  });
  ioc_.run();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}

std::string ControlPlane::Fingerprint() const {
  // Which files, and their size and modification time: cheap to take every 200 ms.
  auto files = policy::ListPolicyFiles(options_.policy_path);
  if (!files.ok()) return std::string(files.status().message());
  std::string out;
  for (const auto& f : *files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) continue;
    absl::StrAppend(&out, f, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec,
                    ";");
  }
  return out;
}

void ControlPlane::Watch() {
  watch_timer_.expires_after(std::chrono::milliseconds(200));
  watch_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    std::string now = Fingerprint();
    if (now != fingerprint_) {
      fingerprint_ = std::move(now);
      Reload("file change");
    }
    Watch();
  });
}

void ControlPlane::Reload(const char* why) {
  auto policy = policy::LoadPolicy(options_.policy_path);
  ++reloads_;
  if (!policy.ok()) {
    ++policy_errors_;
    policy_error_ = std::string(policy.status().message());
    LogError("policy change refused (", why, "); version ", policy_version_,
             " stays in force:\n", policy_error_);
    return;
  }
  policy_error_.clear();
  Adopt(*std::move(policy), why);
}

void ControlPlane::Adopt(policy::PolicySet policy, const char* why) {
  if (policy.version == policy_version_) return;
  policy_version_ = policy.version;
  views_.SetPolicy(std::make_shared<const policy::PolicySet>(std::move(policy)));
  LogInfo("policy version ", policy_version_, " loaded (", why, ")");
  discovery_->Invalidate();
}

std::string ControlPlane::RenderIdentityMetrics() const {
  if (!certificates_) return "";
  std::string out = absl::StrCat(
      "# HELP outrigger_control_certificates_signed_total Sidecar certificates issued.\n"
      "# TYPE outrigger_control_certificates_signed_total counter\n"
      "outrigger_control_certificates_signed_total ", certificates_->signed_total(), "\n",
      "# HELP outrigger_control_certificates_refused_total Certificate requests refused.\n"
      "# TYPE outrigger_control_certificates_refused_total counter\n"
      "outrigger_control_certificates_refused_total ", certificates_->refused_total(), "\n",
      "# HELP outrigger_control_ca_expiry_timestamp_seconds When the mesh CA's signing "
      "certificate expires.\n# TYPE outrigger_control_ca_expiry_timestamp_seconds gauge\n"
      "outrigger_control_ca_expiry_timestamp_seconds ",
      absl::ToUnixSeconds(identity_->ca().chain()[0].not_after()), "\n",
      "# HELP outrigger_control_certificate_expiry_timestamp_seconds When the last certificate "
      "issued to each proxy expires.\n"
      "# TYPE outrigger_control_certificate_expiry_timestamp_seconds gauge\n");
  for (const auto& [node, c] : certificates_->Issued()) {
    absl::StrAppend(&out, "outrigger_control_certificate_expiry_timestamp_seconds{node=\"", node,
                    "\",spiffe_id=\"", c.spiffe_id, "\"} ", absl::ToUnixSeconds(c.not_after),
                    "\n");
  }
  return out;
}

std::string ControlPlane::RenderMetrics() const {
  size_t connected = 0;
  for (const auto& [id, w] : discovery_->workloads()) connected += w.connected;
  size_t nacked = 0;
  size_t stale = 0;
  for (const ProxyStatus& p : discovery_->Status()) {
    bool n = false;
    bool s = false;
    for (const TypeStatus& t : p.types) {
      n = n || t.state == TypeStatus::State::kNacked;
      s = s || t.state == TypeStatus::State::kStale;
    }
    nacked += n;
    stale += s;
  }
  std::string histograms =
      "# HELP outrigger_control_push_duration_milliseconds Time to compute one proxy's view and "
      "queue what changed.\n# TYPE outrigger_control_push_duration_milliseconds histogram\n";
  discovery_->push_ms().Render("outrigger_control_push_duration_milliseconds", "", &histograms);
  absl::StrAppend(&histograms,
                  "# HELP outrigger_control_convergence_milliseconds From a config change to a "
                  "proxy's acknowledgement of it (per proxy and resource type).\n"
                  "# TYPE outrigger_control_convergence_milliseconds histogram\n");
  discovery_->convergence_ms().Render("outrigger_control_convergence_milliseconds", "",
                                      &histograms);
  return absl::StrCat(histograms,
      "# HELP outrigger_control_proxies_connected Proxies with an open discovery stream.\n"
      "# TYPE outrigger_control_proxies_connected gauge\n"
      "outrigger_control_proxies_connected ", connected, "\n",
      "# HELP outrigger_control_pushes_total Discovery responses sent.\n"
      "# TYPE outrigger_control_pushes_total counter\n"
      "outrigger_control_pushes_total ", discovery_->pushes(), "\n",
      "# HELP outrigger_control_nacks_total Responses proxies rejected.\n"
      "# TYPE outrigger_control_nacks_total counter\n"
      "outrigger_control_nacks_total ", discovery_->nacks(), "\n",
      "# HELP outrigger_control_proxies_nacked Proxies whose latest config of some type is "
      "rejected.\n# TYPE outrigger_control_proxies_nacked gauge\n"
      "outrigger_control_proxies_nacked ", nacked, "\n",
      "# HELP outrigger_control_proxies_stale Proxies that have not yet acknowledged the latest "
      "config of some type.\n# TYPE outrigger_control_proxies_stale gauge\n"
      "outrigger_control_proxies_stale ", stale, "\n",
      RenderIdentityMetrics(),
      "# HELP outrigger_control_policy_reloads_total Policy loads after a change.\n"
      "# TYPE outrigger_control_policy_reloads_total counter\n"
      "outrigger_control_policy_reloads_total ", reloads_, "\n",
      "# HELP outrigger_control_policy_errors_total Policy changes refused as invalid.\n"
      "# TYPE outrigger_control_policy_errors_total counter\n"
      "outrigger_control_policy_errors_total ", policy_errors_, "\n",
      "# HELP outrigger_control_policy_valid 0 while the latest policy change is refused.\n"
      "# TYPE outrigger_control_policy_valid gauge\n"
      "outrigger_control_policy_valid ", policy_error_.empty() ? 1 : 0, "\n",
      "# TYPE outrigger_control_policy_info gauge\n"
      "outrigger_control_policy_info{version=\"", policy_version_, "\"} 1\n");
}

}  // namespace outrigger::controlplane
