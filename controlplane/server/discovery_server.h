// The control plane's end of the discovery stream (docs/xds.md). Every proxy holds one gRPC
// stream; the server registers the proxy's workload, computes the proxy's view of the mesh,
// pushes the resource types that changed in make-before-break order, and records ACKs and NACKs
// for `outrigger proxy-status`.
//
// Threads: gRPC calls the stream reactors on its own threads; they only post to the control loop
// (one asio io_context), which owns every piece of state here. Nothing is locked except each
// stream's write queue.
#ifndef OUTRIGGER_CONTROLPLANE_SERVER_DISCOVERY_SERVER_H_
#define OUTRIGGER_CONTROLPLANE_SERVER_DISCOVERY_SERVER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "outrigger/v1/discovery.grpc.pb.h"
#include "xds/common/histogram.h"

namespace outrigger::controlplane {

inline constexpr char kClusterType[] = "type.googleapis.com/outrigger.v1.Cluster";
inline constexpr char kEndpointType[] = "type.googleapis.com/outrigger.v1.ClusterLoadAssignment";
inline constexpr char kRouteType[] = "type.googleapis.com/outrigger.v1.RouteConfiguration";
// One per proxy, named after its own service: what its sidecar enforces on inbound traffic.
// Optional: a proxy that never subscribes to it is not sent it and is not shown with it.
inline constexpr char kInboundPolicyType[] = "type.googleapis.com/outrigger.v1.InboundPolicy";

// One resource of a view: its name and its packed message.
struct Resource {
  std::string name;
  google::protobuf::Any body;
};

using Resources = std::shared_ptr<const std::vector<Resource>>;

// What one proxy should have, per type. Views are shared between proxies (a cached view is
// handed to every stream of a namespace), so the lists are immutable and versioned once.
struct View {
  struct Type {
    Resources resources = std::make_shared<const std::vector<Resource>>();
    std::string version;
  };
  std::map<std::string, Type> types;  // type_url -> resources (sorted by name)

  // Sets a type's resources and computes its version.
  void Set(const std::string& type_url, std::vector<Resource> resources);
  const Type& Get(const std::string& type_url) const;
};

// A workload whose proxy is (or was, within the grace period) connected.
struct Workload {
  v1::Node node;
  bool connected = true;
  std::chrono::steady_clock::time_point disconnected_at;
};

// Builds the view of `node` given every registered workload; `generation` changes whenever the
// workloads do (so views may be cached). Runs on the control loop.
using ViewBuilder = std::function<View(
    const v1::Node& node, const std::map<std::string, Workload>& workloads, uint64_t generation)>;

// What `outrigger proxy-status` shows for one proxy and type.
struct TypeStatus {
  std::string type_url;
  std::string sent_version;
  std::string acked_version;
  std::string nack_error;  // the last NACK's error, while the latest push stays unacknowledged
  enum class State { kNotSent, kSynced, kStale, kNacked } state = State::kNotSent;
};
struct ProxyStatus {
  v1::Node node;
  bool connected = true;
  std::vector<TypeStatus> types;
};

struct DiscoveryOptions {
  std::chrono::milliseconds debounce{100};
  // How long the endpoint of a disconnected proxy is kept. Also, after the control plane
  // starts, how long proxies that come back with a config keep it unchanged: the registry is
  // rebuilt as sidecars reconnect, and pushing a half-empty registry would drop endpoints.
  std::chrono::milliseconds endpoint_grace{10000};
  // With the mesh CA on: a stream must come with the proxy's mesh certificate, whose SPIFFE ID
  // must be spiffe://<trust_domain>/ns/<node.namespace>/sa/<node.service>.
  bool require_identity = false;
  std::string trust_domain;
};

class DiscoveryServer final : public v1::AggregatedDiscoveryService::CallbackService {
 public:
  DiscoveryServer(boost::asio::io_context& control, ViewBuilder builder,
                  DiscoveryOptions options = {});
  ~DiscoveryServer() override;

  grpc::ServerBidiReactor<v1::DiscoveryRequest, v1::DiscoveryResponse>* StreamAggregatedResources(
      grpc::CallbackServerContext* context) override;

  // On the control loop: the inputs of the views changed (policy, registry); recompute every
  // view after the debounce interval and push what changed.
  void Invalidate();
  // On the control loop.
  std::vector<ProxyStatus> Status() const;
  const std::map<std::string, Workload>& workloads() const { return workloads_; }
  size_t connected_streams() const { return streams_.size(); }
  uint64_t pushes() const { return pushes_; }
  uint64_t nacks() const { return nacks_; }
  // Time to compute one proxy's view and queue what changed (one sample per proxy per push).
  const Histogram& push_ms() const { return push_ms_; }
  // From a change (policy, registry, or a new subscription) to the proxy's ACK of the version
  // it caused (one sample per proxy per resource type).
  const Histogram& convergence_ms() const { return convergence_ms_; }

 private:
  class Stream;
  struct TypeState {
    bool subscribed = false;
    std::string sent_version;
    std::string sent_nonce;
    std::string acked_version;
    std::string nack_error;
    std::vector<std::string> names;  // resource names last sent
    // When the change behind the version in flight happened (unset once ACKed or NACKed).
    std::optional<std::chrono::steady_clock::time_point> change_at;
  };
  struct StreamState {
    v1::Node node;
    bool registered = false;
    bool resumed = false;  // came back with an older config during the start-up window
    std::map<std::string, TypeState> types;
    std::map<std::string, Resources> sent;  // last sent resources per type
  };

  void OnRequest(Stream* stream, const v1::DiscoveryRequest& request);
  void OnStreamClosed(Stream* stream);
  void Recompute();
  // Pushes `view` to `stream`: adds before routes, removals after.
  void Push(Stream* stream, StreamState& state, const View& view);
  void SendType(Stream* stream, StreamState& state, const std::string& type,
                const Resources& resources, const std::string& version);
  // The change being pushed now (for convergence time).
  std::chrono::steady_clock::time_point change_at_;
  void ExpireWorkloads();

  boost::asio::io_context& control_;
  ViewBuilder builder_;
  DiscoveryOptions options_;
  boost::asio::steady_timer debounce_;
  boost::asio::steady_timer expiry_;
  bool pending_ = false;
  std::map<Stream*, StreamState> streams_;
  std::map<std::string, Workload> workloads_;  // by node id
  uint64_t nonce_ = 0;
  // Responses built during the current push (push_id_), by "type/version", shared by streams.
  uint64_t push_id_ = 0;
  std::map<std::string, std::pair<uint64_t, std::shared_ptr<const v1::DiscoveryResponse>>>
      responses_;
  uint64_t generation_ = 0;  // bumped when workloads_ changes
  std::chrono::steady_clock::time_point warm_until_;
  boost::asio::steady_timer warm_timer_;
  uint64_t pushes_ = 0;
  uint64_t nacks_ = 0;
  Histogram push_ms_;
  Histogram convergence_ms_;
  bool change_pending_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// A content version for a list of resources: a short hex hash of names and bodies.
std::string VersionOf(const std::vector<Resource>& resources);

}  // namespace outrigger::controlplane

#endif  // OUTRIGGER_CONTROLPLANE_SERVER_DISCOVERY_SERVER_H_
