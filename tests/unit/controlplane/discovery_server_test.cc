// The InboundPolicy resource type on the discovery stream (controlplane/server/
// discovery_server.cc), through a real gRPC stream on loopback: subscribed, versioned, ACKed,
// pushed when the policy changes, NACKed, not resent when the proxy has it; and proxies that
// never subscribe to it are served and shown as before.
#include "controlplane/server/discovery_server.h"

#include <grpcpp/grpcpp.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/mesh/view_builder.h"
#include "controlplane/policy/loader.h"
#include "outrigger/v1/config.pb.h"
#include "outrigger/v1/discovery.grpc.pb.h"

namespace outrigger::controlplane {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::shared_ptr<const policy::PolicySet> PolicyWithLimit(int max_tokens) {
  const std::string text = absl::StrCat(R"(apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  selector: {app: catalog}
  ports: [{port: 80}]
---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: catalog, namespace: shop}
spec:
  targetRef: {kind: Service, name: catalog}
  rateLimit: {maxTokens: )",
                                        max_tokens, "}\n");
  policy::PolicyErrors errors;
  policy::PolicySet set = policy::BuildPolicy({{"p.yaml", text}}, &errors);
  INFO(absl::StrJoin(errors.Sorted(), "\n"));
  REQUIRE(errors.empty());
  return std::make_shared<const policy::PolicySet>(std::move(set));
}

// A control plane's discovery server on 127.0.0.1, its control loop on a thread.
class Server {
 public:
  explicit Server(std::shared_ptr<const policy::PolicySet> policy) {
    views_.SetPolicy(std::move(policy));
    DiscoveryOptions options;
    options.debounce = 10ms;
    options.endpoint_grace = 0ms;  // no start-up window
    discovery_ = std::make_unique<DiscoveryServer>(
        ioc_,
        [this](const v1::Node& node, const std::map<std::string, Workload>& workloads,
               uint64_t generation) { return views_.Build(node, workloads, generation); },
        options);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(discovery_.get());
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
    REQUIRE(port_ != 0);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Server() {
    server_->Shutdown(std::chrono::system_clock::now() + 1s);
    work_.reset();
    ioc_.stop();
    thread_.join();
    server_.reset();
    discovery_.reset();
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // Runs `f` on the control loop and returns its result.
  template <typename F>
  auto OnLoop(F f) -> decltype(f()) {
    std::promise<decltype(f())> promise;
    auto future = promise.get_future();
    asio::post(ioc_, [&] { promise.set_value(f()); });
    return future.get();
  }

  void SetPolicy(std::shared_ptr<const policy::PolicySet> policy) {
    OnLoop([&] {
      views_.SetPolicy(std::move(policy));
      discovery_->Invalidate();
      return true;
    });
  }

  // The status of `type_url` for proxy `id`, or nullopt when the proxy shows no such type.
  std::optional<TypeStatus> StatusOf(const std::string& id, const std::string& type_url) {
    return OnLoop([&]() -> std::optional<TypeStatus> {
      for (const ProxyStatus& p : discovery_->Status()) {
        if (p.node.id() != id) continue;
        for (const TypeStatus& t : p.types) {
          if (t.type_url == type_url) return t;
        }
      }
      return std::nullopt;
    });
  }
  size_t TypesShown(const std::string& id) {
    return OnLoop([&] {
      for (const ProxyStatus& p : discovery_->Status()) {
        if (p.node.id() == id) return p.types.size();
      }
      return size_t{0};
    });
  }

  // Waits (at most 10 s) until `type_url` of proxy `id` is in `state`.
  bool WaitFor(const std::string& id, const std::string& type_url, TypeStatus::State state) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = StatusOf(id, type_url);
      if (s && s->state == state) return true;
      std::this_thread::sleep_for(5ms);  // polling a condition, with a deadline
    }
    return false;
  }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  ViewBuilderImpl views_;
  std::unique_ptr<DiscoveryServer> discovery_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

// One proxy's stream.
class Proxy {
 public:
  Proxy(const std::string& address, v1::Node node) : node_(std::move(node)) {
    stub_ = v1::AggregatedDiscoveryService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    ctx_.set_deadline(std::chrono::system_clock::now() + 30s);  // a failing test cannot hang
    stream_ = stub_->StreamAggregatedResources(&ctx_);
  }
  ~Proxy() {
    ctx_.TryCancel();
    stream_->Finish();
  }

  void Subscribe(const std::string& type_url, const std::string& version = "") {
    v1::DiscoveryRequest r;
    if (first_) *r.mutable_node() = node_;
    first_ = false;
    r.set_type_url(type_url);
    r.set_version_info(version);
    REQUIRE(stream_->Write(r));
  }
  v1::DiscoveryResponse Read() {
    v1::DiscoveryResponse r;
    REQUIRE(stream_->Read(&r));
    return r;
  }
  void Ack(const v1::DiscoveryResponse& r) {
    v1::DiscoveryRequest req;
    req.set_type_url(r.type_url());
    req.set_version_info(r.version_info());
    req.set_response_nonce(r.nonce());
    REQUIRE(stream_->Write(req));
  }
  void Nack(const v1::DiscoveryResponse& r, const std::string& kept_version,
            const std::string& error) {
    v1::DiscoveryRequest req;
    req.set_type_url(r.type_url());
    req.set_version_info(kept_version);
    req.set_response_nonce(r.nonce());
    req.mutable_error_detail()->set_code(3);
    req.mutable_error_detail()->set_message(error);
    REQUIRE(stream_->Write(req));
  }

 private:
  v1::Node node_;
  bool first_ = true;
  std::unique_ptr<v1::AggregatedDiscoveryService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::DiscoveryRequest, v1::DiscoveryResponse>> stream_;
};

v1::Node MakeNode(const std::string& id, const std::string& service, const std::string& inbound) {
  v1::Node node;
  node.set_id(id);
  node.set_service(service);
  node.set_namespace_("shop");
  node.set_inbound_address(inbound);
  return node;
}

v1::InboundPolicy InboundOf(const v1::DiscoveryResponse& r) {
  REQUIRE(r.type_url() == kInboundPolicyType);
  REQUIRE(r.resources_size() == 1);
  v1::InboundPolicy p;
  REQUIRE(r.resources(0).UnpackTo(&p));
  return p;
}

}  // namespace

TEST_CASE("InboundPolicy is served like the other types", "[discovery][inbound]") {
  Server server(PolicyWithLimit(10));

  // A proxy that subscribes to all four types gets each, and ACKs them.
  Proxy catalog(server.address(), MakeNode("catalog-1", "catalog", "127.0.0.1:9"));
  for (const char* type : {kClusterType, kEndpointType, kRouteType, kInboundPolicyType}) {
    catalog.Subscribe(type);
  }
  std::map<std::string, v1::DiscoveryResponse> first;
  for (int i = 0; i < 4; ++i) {
    v1::DiscoveryResponse r = catalog.Read();
    first[r.type_url()] = r;
    catalog.Ack(r);
  }
  REQUIRE(first.size() == 4);
  const v1::DiscoveryResponse& inbound = first.at(kInboundPolicyType);
  CHECK(inbound.version_info().size() == 16);
  v1::InboundPolicy p = InboundOf(inbound);
  CHECK(p.name() == "catalog.shop");
  CHECK(p.local_rate_limit().max_tokens() == 10);
  REQUIRE(server.WaitFor("catalog-1", kInboundPolicyType, TypeStatus::State::kSynced));
  CHECK(server.StatusOf("catalog-1", kInboundPolicyType)->acked_version == inbound.version_info());
  CHECK(server.TypesShown("catalog-1") == 4);

  // A proxy that knows only the three original types is served them, and shown with three.
  Proxy web(server.address(), MakeNode("web-1", "web", ""));
  for (const char* type : {kClusterType, kEndpointType, kRouteType}) web.Subscribe(type);
  for (int i = 0; i < 3; ++i) web.Ack(web.Read());
  REQUIRE(server.WaitFor("web-1", kRouteType, TypeStatus::State::kSynced));
  CHECK(server.WaitFor("web-1", kClusterType, TypeStatus::State::kSynced));
  CHECK(server.TypesShown("web-1") == 3);
  CHECK_FALSE(server.StatusOf("web-1", kInboundPolicyType));

  // A policy change that touches only the rate limit pushes only the InboundPolicy, to the proxy
  // that subscribed; a NACK is recorded.
  server.SetPolicy(PolicyWithLimit(20));
  v1::DiscoveryResponse pushed = catalog.Read();
  REQUIRE(pushed.type_url() == kInboundPolicyType);
  CHECK(pushed.version_info() != inbound.version_info());
  CHECK(InboundOf(pushed).local_rate_limit().max_tokens() == 20);
  catalog.Nack(pushed, inbound.version_info(), "local_rate_limit: not today");
  REQUIRE(server.WaitFor("catalog-1", kInboundPolicyType, TypeStatus::State::kNacked));
  CHECK(server.StatusOf("catalog-1", kInboundPolicyType)->nack_error ==
        "local_rate_limit: not today");
  CHECK(server.StatusOf("catalog-1", kClusterType)->state == TypeStatus::State::kSynced);
  CHECK(server.StatusOf("web-1", kRouteType)->state == TypeStatus::State::kSynced);

  // A proxy that resubscribes with the current version is not sent it again.
  Proxy again(server.address(), MakeNode("catalog-2", "catalog", "127.0.0.1:10"));
  again.Subscribe(kInboundPolicyType, pushed.version_info());
  REQUIRE(server.WaitFor("catalog-2", kInboundPolicyType, TypeStatus::State::kSynced));
  CHECK(server.StatusOf("catalog-2", kInboundPolicyType)->sent_version == pushed.version_info());
}

}  // namespace outrigger::controlplane
