// See discovery_server.h.
#include "controlplane/server/discovery_server.h"

#include "xds/grpc_tls.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <deque>
#include <mutex>
#include <set>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "xds/common/log.h"
#include "xds/write_queue.h"

namespace outrigger::controlplane {

namespace asio = boost::asio;

std::string VersionOf(const std::vector<Resource>& resources) {
  // FNV-1a over names and serialized bodies: stable across processes (a restarted control
  // plane computes the same versions, so reconnecting proxies are not sent what they have).
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  for (const auto& r : resources) {
    mix(r.name);
    mix(r.body.SerializeAsString());
  }
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16));
}

void View::Set(const std::string& type_url, std::vector<Resource> resources) {
  std::sort(resources.begin(), resources.end(),
            [](const Resource& a, const Resource& b) { return a.name < b.name; });
  Type& t = types[type_url];
  t.version = VersionOf(resources);
  t.resources = std::make_shared<const std::vector<Resource>>(std::move(resources));
}

const View::Type& View::Get(const std::string& type_url) const {
  static const Type kEmpty{std::make_shared<const std::vector<Resource>>(),
                           VersionOf(std::vector<Resource>())};
  auto it = types.find(type_url);
  return it == types.end() ? kEmpty : it->second;
}

class DiscoveryServer::Stream
    : public grpc::ServerBidiReactor<v1::DiscoveryRequest, v1::DiscoveryResponse> {
 public:
  Stream(DiscoveryServer* server, std::weak_ptr<bool> alive, std::optional<std::string> peer)
      : peer_id(std::move(peer)),
        server_(server),
        control_(server->control_),
        alive_(std::move(alive)) {
    StartSendInitialMetadata();  // tells the proxy the stream is up before any push
    StartRead(&request_);
  }

  // State of the world per type: a response still waiting in the queue is replaced by a newer
  // one of the same type instead of queueing both (a slow proxy never builds a backlog).
  // Responses are shared, immutable, between every stream they go to.
  // Only a response of an earlier push is replaced, and in its place, so the make-before-break
  // order of one push (clusters union, endpoints, routes, clusters) is never reshuffled.
  void Send(std::shared_ptr<const v1::DiscoveryResponse> response, uint64_t push) {
    const std::string type = response->type_url();
    const Queued* next =
        writes_.PushOrReplace({std::move(response), push}, [&](const Queued& waiting) {
          return waiting.push < push && waiting.response->type_url() == type;
        });
    if (next != nullptr) StartWrite(next->response.get());
  }

  void Close(const grpc::Status& status) {
    if (writes_.Close()) Finish(status);
  }

  // The SPIFFE ID of the proxy's verified certificate, when it presented one.
  const std::optional<std::string> peer_id;

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      Close(grpc::Status::OK);
      return;
    }
    auto alive = alive_;
    DiscoveryServer* server = server_;
    asio::post(control_, [alive, server, this, request = request_]() {
      if (!alive.expired()) server->OnRequest(this, request);
    });
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    if (const Queued* next = writes_.Done(ok)) StartWrite(next->response.get());
  }

  void OnCancel() override { Close(grpc::Status::CANCELLED); }

  void OnDone() override {
    auto alive = alive_;
    DiscoveryServer* server = server_;
    asio::post(control_, [alive, server, this]() {
      if (alive.expired()) {
        delete this;
        return;
      }
      server->OnStreamClosed(this);
    });
  }

  DiscoveryServer* server_;
  asio::io_context& control_;
  std::weak_ptr<bool> alive_;
  v1::DiscoveryRequest request_;
  struct Queued {
    std::shared_ptr<const v1::DiscoveryResponse> response;
    uint64_t push;
  };
  xds::WriteQueue<Queued> writes_;
};

DiscoveryServer::DiscoveryServer(asio::io_context& control, ViewBuilder builder,
                                 DiscoveryOptions options)
    : control_(control),
      builder_(std::move(builder)),
      options_(options),
      debounce_(control),
      expiry_(control),
      warm_until_(std::chrono::steady_clock::now() + options.endpoint_grace),
      warm_timer_(control) {
  ExpireWorkloads();
  warm_timer_.expires_at(warm_until_);
  warm_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (ec || alive.expired()) return;
    LogInfo("start-up window over: pushing current config to every proxy");
    Recompute();
  });
}

DiscoveryServer::~DiscoveryServer() { alive_.reset(); }

grpc::ServerBidiReactor<v1::DiscoveryRequest, v1::DiscoveryResponse>*
DiscoveryServer::StreamAggregatedResources(grpc::CallbackServerContext* context) {
  auto* stream = new Stream(this, alive_, xds::PeerSpiffeId(*context->auth_context()));
  asio::post(control_, [this, stream, alive = std::weak_ptr<bool>(alive_)]() {
    if (!alive.expired()) streams_.try_emplace(stream);
  });
  return stream;
}

void DiscoveryServer::OnRequest(Stream* stream, const v1::DiscoveryRequest& request) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  StreamState& st = it->second;
  if (!st.registered) {
    if (!request.has_node() || request.node().id().empty()) {
      stream->Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "the first request of a stream must carry node.id"));
      return;
    }
    if (options_.require_identity) {
      const std::string ns = request.node().namespace_().empty() ? "default"
                                                                 : request.node().namespace_();
      const std::string want = absl::StrCat("spiffe://", options_.trust_domain, "/ns/", ns,
                                            "/sa/", request.node().service());
      if (!stream->peer_id) {
        LogWarning("discovery stream from node '", request.node().id(),
                   "' refused: no mesh certificate");
        stream->Close(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                   "the discovery stream needs the proxy's mesh certificate "
                                   "(get one with a join token first)"));
        return;
      }
      if (*stream->peer_id != want) {
        LogWarning("discovery stream from node '", request.node().id(), "' refused: certificate ",
                   *stream->peer_id, " is not ", want);
        stream->Close(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                   absl::StrCat("certificate ", *stream->peer_id,
                                                " may not speak for ", want)));
        return;
      }
    }
    st.node = request.node();
    st.registered = true;
    Workload& w = workloads_[st.node.id()];
    w.node = st.node;
    w.connected = true;
    ++generation_;
    LogInfo("proxy ", st.node.id(), " connected (service ", st.node.service(), ".",
            st.node.namespace_(), ", inbound ",
            st.node.inbound_address().empty() ? "-" : st.node.inbound_address(), ")");
    Invalidate();  // its workload is a new endpoint for everyone else
  }
  const std::string& type = request.type_url();
  if (type != kClusterType && type != kEndpointType && type != kRouteType &&
      type != kInboundPolicyType) {
    LogWarning("proxy ", st.node.id(), " asked for unknown type ", type);
    return;
  }
  TypeState& ts = st.types[type];
  if (!request.response_nonce().empty()) {
    if (request.response_nonce() != ts.sent_nonce) return;  // answers an older push
    if (request.has_error_detail()) {
      ts.nack_error = request.error_detail().message();
      ts.change_at.reset();
      ++nacks_;
      LogWarning("proxy ", st.node.id(), " rejected ", type, " version ", ts.sent_version, ": ",
                 ts.nack_error);
    } else {
      ts.acked_version = request.version_info();
      ts.nack_error.clear();
      if (ts.change_at) {
        convergence_ms_.Record(std::chrono::duration<double, std::milli>(
                                   std::chrono::steady_clock::now() - *ts.change_at)
                                   .count());
        ts.change_at.reset();
      }
    }
    return;
  }
  // A (re)subscription. A proxy that already has the current version is not sent it again.
  ts.subscribed = true;
  const View view = builder_(st.node, workloads_, generation_);
  const View::Type& current = view.Get(type);
  const bool warming = std::chrono::steady_clock::now() < warm_until_;
  if (!request.version_info().empty() && (request.version_info() == current.version || warming)) {
    // Has the current config, or (just after a control-plane restart) some config it keeps
    // until the registry has been rebuilt.
    ts.sent_version = ts.acked_version = request.version_info();
    st.sent[type] = current.resources;
    if (warming && request.version_info() != current.version) st.resumed = true;
    return;
  }
  ++push_id_;
  change_at_ = std::chrono::steady_clock::now();  // the subscription is the change
  SendType(stream, st, type, current.resources, current.version);
}

void DiscoveryServer::OnStreamClosed(Stream* stream) {
  auto it = streams_.find(stream);
  if (it != streams_.end()) {
    const StreamState& st = it->second;
    if (st.registered) {
      // Only if no newer stream of the same proxy has taken over the workload.
      bool newer = false;
      for (const auto& [other, other_state] : streams_) {
        newer = newer || (other != stream && other_state.registered &&
                          other_state.node.id() == st.node.id());
      }
      auto w = workloads_.find(st.node.id());
      if (!newer && w != workloads_.end()) {
        w->second.connected = false;
        w->second.disconnected_at = std::chrono::steady_clock::now();
        LogInfo("proxy ", st.node.id(), " disconnected; its endpoint stays for ",
                options_.endpoint_grace.count(), " ms");
      }
    }
    streams_.erase(it);
  }
  delete stream;
}

void DiscoveryServer::ExpireWorkloads() {
  const auto now = std::chrono::steady_clock::now();
  bool changed = false;
  for (auto it = workloads_.begin(); it != workloads_.end();) {
    if (!it->second.connected && now - it->second.disconnected_at >= options_.endpoint_grace) {
      LogInfo("proxy ", it->first, " did not come back: endpoint removed");
      it = workloads_.erase(it);
      changed = true;
      ++generation_;
    } else {
      ++it;
    }
  }
  if (changed) Invalidate();
  expiry_.expires_after(std::chrono::milliseconds(250));
  expiry_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (!ec && !alive.expired()) ExpireWorkloads();
  });
}

void DiscoveryServer::Invalidate() {
  if (!change_pending_) {
    change_pending_ = true;
    change_at_ = std::chrono::steady_clock::now();
  }
  if (pending_) return;
  pending_ = true;
  debounce_.expires_after(options_.debounce);
  debounce_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    if (!ec && !alive.expired()) Recompute();
  });
}

void DiscoveryServer::Recompute() {
  pending_ = false;
  if (!change_pending_) change_at_ = std::chrono::steady_clock::now();  // start-up window end
  change_pending_ = false;
  ++push_id_;
  responses_.clear();
  const bool warming = std::chrono::steady_clock::now() < warm_until_;
  for (auto& [stream, st] : streams_) {
    if (!st.registered) continue;
    if (warming && st.resumed) continue;  // keeps its config until the window ends
    const auto start = std::chrono::steady_clock::now();
    Push(stream, st, builder_(st.node, workloads_, generation_));
    push_ms_.Record(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
}

namespace {

std::set<std::string> Names(const std::vector<Resource>& resources) {
  std::set<std::string> out;
  for (const auto& r : resources) out.insert(r.name);
  return out;
}

}  // namespace

void DiscoveryServer::Push(Stream* stream, StreamState& st, const View& view) {
  auto subscribed = [&](const char* type) { return st.types[type].subscribed; };
  auto changed = [&](const char* type) {
    return subscribed(type) && view.Get(type).version != st.types[type].sent_version;
  };
  // Make before break: a proxy validates every update against what it already has, so clusters
  // must arrive before the endpoints and routes that name them, and leave after them.
  const View::Type& clusters = view.Get(kClusterType);
  std::vector<Resource> removed;
  if (auto it = st.sent.find(kClusterType); it != st.sent.end() && it->second) {
    const std::set<std::string> keep = Names(*clusters.resources);
    for (const auto& r : *it->second) {
      if (!keep.contains(r.name)) removed.push_back(r);
    }
  }
  if (changed(kClusterType)) {
    if (removed.empty()) {
      SendType(stream, st, kClusterType, clusters.resources, clusters.version);
    } else {
      std::vector<Resource> both = *clusters.resources;
      both.insert(both.end(), removed.begin(), removed.end());
      std::sort(both.begin(), both.end(),
                [](const Resource& a, const Resource& b) { return a.name < b.name; });
      const std::string version = VersionOf(both);
      if (version != st.types[kClusterType].sent_version) {
        SendType(stream, st, kClusterType,
                 std::make_shared<const std::vector<Resource>>(std::move(both)), version);
      }
    }
  }
  // The inbound policy names no cluster: its place in the order does not matter.
  for (const char* type : {kEndpointType, kRouteType, kInboundPolicyType}) {
    if (changed(type)) SendType(stream, st, type, view.Get(type).resources, view.Get(type).version);
  }
  if (!removed.empty() && subscribed(kClusterType)) {
    SendType(stream, st, kClusterType, clusters.resources, clusters.version);
  }
}

void DiscoveryServer::SendType(Stream* stream, StreamState& st, const std::string& type,
                               const Resources& resources, const std::string& version) {
  // One response per (type, version) per push, shared by every stream it goes to. The nonce
  // only has to be unique per stream; the push counter makes it so.
  const std::string key = absl::StrCat(type, "/", version);
  auto it = responses_.find(key);
  if (it == responses_.end() || it->second.first != push_id_) {
    auto response = std::make_shared<v1::DiscoveryResponse>();
    response->set_type_url(type);
    response->set_version_info(version);
    response->set_nonce(absl::StrCat(++nonce_));
    for (const auto& r : *resources) *response->add_resources() = r.body;
    it = responses_.insert_or_assign(key, std::make_pair(push_id_, std::move(response))).first;
  }
  const auto& response = it->second.second;
  TypeState& ts = st.types[type];
  ts.sent_version = version;
  ts.sent_nonce = response->nonce();
  ts.nack_error.clear();  // a NACK of an older version no longer describes this one
  // Convergence counts from the oldest change the proxy has not yet acknowledged.
  if (!ts.change_at) ts.change_at = change_at_;
  st.sent[type] = resources;
  ++pushes_;
  stream->Send(response, push_id_);
}

std::vector<ProxyStatus> DiscoveryServer::Status() const {
  std::vector<ProxyStatus> out;
  std::set<std::string> seen;
  for (const auto& [stream, st] : streams_) {
    if (!st.registered) continue;
    ProxyStatus ps;
    ps.node = st.node;
    seen.insert(st.node.id());
    for (const char* type : {kClusterType, kEndpointType, kRouteType, kInboundPolicyType}) {
      // The inbound policy is shown only for proxies that subscribe to it.
      if (absl::string_view(type) == kInboundPolicyType &&
          (!st.types.contains(type) || !st.types.at(type).subscribed)) {
        continue;
      }
      TypeStatus t;
      t.type_url = type;
      if (auto it = st.types.find(type); it != st.types.end()) {
        const TypeState& ts = it->second;
        t.sent_version = ts.sent_version;
        t.acked_version = ts.acked_version;
        t.nack_error = ts.nack_error;
        if (ts.sent_version.empty()) {
          t.state = TypeStatus::State::kNotSent;
        } else if (ts.acked_version == ts.sent_version) {
          t.state = TypeStatus::State::kSynced;
        } else if (!ts.nack_error.empty()) {
          t.state = TypeStatus::State::kNacked;
        } else {
          t.state = TypeStatus::State::kStale;
        }
      }
      ps.types.push_back(std::move(t));
    }
    out.push_back(std::move(ps));
  }
  for (const auto& [id, w] : workloads_) {
    if (seen.contains(id)) continue;
    ProxyStatus ps;
    ps.node = w.node;
    ps.connected = false;
    out.push_back(std::move(ps));
  }
  std::sort(out.begin(), out.end(),
            [](const ProxyStatus& a, const ProxyStatus& b) { return a.node.id() < b.node.id(); });
  return out;
}

}  // namespace outrigger::controlplane
