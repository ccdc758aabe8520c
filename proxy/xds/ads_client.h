// The proxy's end of the discovery stream (docs/xds.md): one gRPC bidirectional stream to
// outrigger-control that subscribes to clusters, endpoints and routes. Every response is handed to
// the main thread, which validates it and answers with Ack() or Nack(). When the stream breaks the
// client reconnects with jittered exponential backoff and resubscribes with the versions it
// already has; meanwhile the proxy keeps serving its last accepted config.
#ifndef OUTRIGGER_PROXY_XDS_ADS_CLIENT_H_
#define OUTRIGGER_PROXY_XDS_ADS_CLIENT_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "outrigger/v1/discovery.grpc.pb.h"

namespace grpc {
class ChannelCredentials;
}

namespace outrigger::proxy {

inline constexpr char kClusterType[] = "type.googleapis.com/outrigger.v1.Cluster";
inline constexpr char kEndpointType[] = "type.googleapis.com/outrigger.v1.ClusterLoadAssignment";
inline constexpr char kRouteType[] = "type.googleapis.com/outrigger.v1.RouteConfiguration";
// One resource named after the proxy's service: what its inbound side enforces.
inline constexpr char kInboundPolicyType[] = "type.googleapis.com/outrigger.v1.InboundPolicy";

class AdsClient {
 public:
  // Called on the main thread for every response received.
  using ResponseHandler = std::function<void(const v1::DiscoveryResponse&)>;
  // Called on the main thread when the stream connects (true) or breaks (false).
  using StateHandler = std::function<void(bool connected, const std::string& detail)>;

  // `credentials`: null means plaintext.
  AdsClient(boost::asio::io_context& main, std::string server, v1::Node node,
            ResponseHandler on_response, StateHandler on_state,
            std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  ~AdsClient();

  void Start();
  void Stop();
  // New credentials (a renewed certificate): used from the next reconnect on; the stream that
  // is up stays up (it was authenticated when it started).
  void SetCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials);
  // The main thread's verdict on a response.
  void Ack(const v1::DiscoveryResponse& response);
  void Nack(const v1::DiscoveryResponse& response, const std::string& error);

 private:
  class Stream;
  void Connect();
  void MakeChannel();
  void OnConnected();
  void OnStreamDone(Stream* stream, int code, const std::string& message);
  void ScheduleReconnect();
  void Send(v1::DiscoveryRequest request);

  boost::asio::io_context& main_;
  const std::string server_;
  const v1::Node node_;
  ResponseHandler on_response_;
  StateHandler on_state_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  bool rebuild_channel_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AggregatedDiscoveryService::Stub> stub_;
  std::unique_ptr<Stream> stream_;
  boost::asio::steady_timer retry_timer_;
  std::map<std::string, std::string> accepted_versions_;  // type_url -> last ACKed version
  int failures_ = 0;
  bool stopped_ = false;
  uint64_t rng_;
};

}  // namespace outrigger::proxy

#endif  // OUTRIGGER_PROXY_XDS_ADS_CLIENT_H_
