// See ads_client.h. gRPC runs the stream's callbacks on its own threads; everything they learn is
// posted to the main thread, and writes are queued (one in flight at a time, as gRPC requires).
#include "proxy/xds/ads_client.h"

#include <grpcpp/grpcpp.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <mutex>

#include "xds/common/log.h"
#include "xds/write_queue.h"

namespace outrigger::proxy {

namespace asio = boost::asio;

class AdsClient::Stream
    : public grpc::ClientBidiReactor<v1::DiscoveryRequest, v1::DiscoveryResponse> {
 public:
  explicit Stream(AdsClient* owner) : owner_(owner) {}

  // The hold keeps the call from finishing (and gRPC from freeing it) while the main thread may
  // still start writes from outside a reaction; it is removed once the read side has ended.
  void Begin(v1::AggregatedDiscoveryService::Stub* stub) {
    stub->async()->StreamAggregatedResources(&context_, this);
    AddHold();
    StartRead(&response_);
    StartCall();
  }

  // From the main thread. StartWrite happens under mu_, so it is never issued after the hold was
  // released: a write started on a finished call is a use after free inside gRPC.
  void Send(v1::DiscoveryRequest request) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ending_) return;
    if (const auto* next = writes_.Push(std::move(request))) StartWrite(next);
  }

  void Cancel() { context_.TryCancel(); }

 private:
  // The control plane answered the call: the stream is up, whether or not it sends anything.
  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;
    AdsClient* owner = owner_;
    asio::post(owner->main_, [owner, this]() {
      if (owner->stream_.get() == this) owner->OnConnected();
    });
  }

  void OnWriteDone(bool ok) override {
    if (const auto* next = writes_.Done(ok)) StartWrite(next);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The stream is ending: no more writes from outside, then let it finish (OnDone follows).
      {
        std::lock_guard<std::mutex> lock(mu_);
        ending_ = true;
      }
      RemoveHold();
      return;
    }
    AdsClient* owner = owner_;
    asio::post(owner->main_, [owner, response = response_]() {
      if (!owner->stopped_) owner->on_response_(response);
    });
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    writes_.Close();
    AdsClient* owner = owner_;
    asio::post(owner->main_, [owner, this, code = static_cast<int>(status.error_code()),
                              message = status.error_message()]() {
      owner->OnStreamDone(this, code, message);
    });
  }

  AdsClient* owner_;
  std::mutex mu_;        // orders Send's StartWrite before the hold's release
  bool ending_ = false;  // guarded by mu_
  grpc::ClientContext context_;
  v1::DiscoveryResponse response_;
  xds::WriteQueue<v1::DiscoveryRequest> writes_;
};

AdsClient::AdsClient(asio::io_context& main, std::string server, v1::Node node,
                     ResponseHandler on_response, StateHandler on_state,
                     std::shared_ptr<grpc::ChannelCredentials> credentials)
    : main_(main),
      server_(std::move(server)),
      node_(std::move(node)),
      on_response_(std::move(on_response)),
      on_state_(std::move(on_state)),
      credentials_(credentials ? std::move(credentials) : grpc::InsecureChannelCredentials()),
      retry_timer_(main),
      rng_(static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) {}

AdsClient::~AdsClient() { Stop(); }

void AdsClient::Start() {
  MakeChannel();
  Connect();
}

void AdsClient::SetCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials) {
  credentials_ = std::move(credentials);
  rebuild_channel_ = true;
}

void AdsClient::MakeChannel() {
  rebuild_channel_ = false;
  grpc::ChannelArguments args;
  // gRPC's channel has its own reconnect backoff (1 s growing to 2 min by default) that would
  // fail our attempts fast while it waits; keep it as short as ours, so that a restarted control
  // plane sees every proxy back within its start-up window.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // Notice a control plane that vanished without closing the connection (host lost).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  channel_ = grpc::CreateCustomChannel(server_, credentials_, args);
  stub_ = v1::AggregatedDiscoveryService::NewStub(channel_);
}

void AdsClient::Stop() {
  if (stopped_) return;
  stopped_ = true;
  retry_timer_.cancel();
  if (stream_) {
    stream_->Cancel();
    // OnDone will still run on a gRPC thread; the Stream must outlive it. Its final post lands
    // on the stopped main loop and is dropped, so the stream is leaked on purpose at exit.
    (void)stream_.release();
  }
}

void AdsClient::Connect() {
  if (stopped_) return;
  if (rebuild_channel_) MakeChannel();
  stream_ = std::make_unique<Stream>(this);
  stream_->Begin(stub_.get());
  // Subscribe to every type, in make-before-break order, saying what we already have.
  bool first = true;
  for (const char* type : {kClusterType, kEndpointType, kRouteType, kInboundPolicyType}) {
    v1::DiscoveryRequest request;
    if (first) *request.mutable_node() = node_;
    first = false;
    request.set_type_url(type);
    if (auto it = accepted_versions_.find(type); it != accepted_versions_.end()) {
      request.set_version_info(it->second);
    }
    stream_->Send(std::move(request));
  }
}

void AdsClient::Send(v1::DiscoveryRequest request) {
  if (stream_) stream_->Send(std::move(request));
}

void AdsClient::OnConnected() {
  failures_ = 0;
  on_state_(true, "");
}

void AdsClient::Ack(const v1::DiscoveryResponse& response) {
  accepted_versions_[response.type_url()] = response.version_info();
  v1::DiscoveryRequest request;
  request.set_type_url(response.type_url());
  request.set_version_info(response.version_info());
  request.set_response_nonce(response.nonce());
  Send(std::move(request));
}

void AdsClient::Nack(const v1::DiscoveryResponse& response, const std::string& error) {
  v1::DiscoveryRequest request;
  request.set_type_url(response.type_url());
  if (auto it = accepted_versions_.find(response.type_url()); it != accepted_versions_.end()) {
    request.set_version_info(it->second);
  }
  request.set_response_nonce(response.nonce());
  request.mutable_error_detail()->set_code(3);  // INVALID_ARGUMENT
  request.mutable_error_detail()->set_message(error);
  Send(std::move(request));
}

void AdsClient::OnStreamDone(Stream* stream, int code, const std::string& message) {
  if (stream != stream_.get()) {
    delete stream;  // an old stream, already replaced
    return;
  }
  stream_.reset();
  if (stopped_) return;
  ++failures_;
  on_state_(false, absl::StrCat("stream to ", server_, " ended (code ", code, "): ", message));
  ScheduleReconnect();
}

void AdsClient::ScheduleReconnect() {
  // Full jitter over an exponential ceiling of 500 ms, 1 s, then 2 s. The ceiling stays
  // well below the control plane's endpoint grace period (default 10 s), so that after a
  // control-plane restart every proxy is back before its endpoint would be dropped.
  const int exp = std::min(failures_, 3);
  const int64_t ceiling_ms = 250LL << exp;
  rng_ = rng_ * 6364136223846793005ULL + 1442695040888963407ULL;
  const int64_t wait_ms = 50 + static_cast<int64_t>((rng_ >> 33) % ceiling_ms);
  retry_timer_.expires_after(std::chrono::milliseconds(wait_ms));
  retry_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Connect();
  });
}

}  // namespace outrigger::proxy
