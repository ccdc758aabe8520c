// xds_fanout: how fast one outrigger-control pushes a change to many proxies. Opens N simulated
// proxy streams (each subscribes to clusters, endpoints and routes and ACKs every response),
// waits until all have their initial config, then changes one route's canary weights through
// the MeshAdmin API and measures, per stream, the time from the change until that stream has
// received the new routes and sent its ACK. Prints p50 / p99 / max and the control plane's RSS
// growth per connected stream (with --control-plane-pid). Run by bench/xds_fanout.py.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "outrigger/v1/admin.grpc.pb.h"
#include "outrigger/v1/discovery.grpc.pb.h"
#include "xds/common/env_flags.h"
#include "xds/write_queue.h"

ABSL_FLAG(std::string, control_plane, "127.0.0.1:15010", "outrigger-control's --xds address.");
ABSL_FLAG(int, streams, 1000, "Simulated proxies.");
ABSL_FLAG(int, channels, 64, "TCP connections the streams are spread over.");
ABSL_FLAG(int, control_plane_pid, 0, "To report the control plane's RSS per stream.");
ABSL_FLAG(std::string, route, "default/reviews", "NAMESPACE/HTTPRoute whose weights change.");
ABSL_FLAG(std::string, weights, "reviews-v1=50,reviews-v2=50", "The new weights.");
ABSL_FLAG(int, timeout_seconds, 60, "Give up after this long in each phase.");

namespace {

using Clock = std::chrono::steady_clock;
constexpr char kRouteType[] = "type.googleapis.com/outrigger.v1.RouteConfiguration";

long RssKb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  int initial_done = 0;
  int changed_done = 0;
  int failed = 0;
  std::atomic<bool> measuring{false};
  Clock::time_point change_at;
};

class FakeProxy : public grpc::ClientBidiReactor<outrigger::v1::DiscoveryRequest,
                                                 outrigger::v1::DiscoveryResponse> {
 public:
  FakeProxy(int id, Shared* shared) : id_(id), shared_(shared) {}

  void Start(outrigger::v1::AggregatedDiscoveryService::Stub* stub) {
    stub->async()->StreamAggregatedResources(&ctx_, this);
    StartRead(&response_);
    bool first = true;  // the node goes on the first request only
    for (const char* type : {"type.googleapis.com/outrigger.v1.Cluster",
                             "type.googleapis.com/outrigger.v1.ClusterLoadAssignment", kRouteType}) {
      outrigger::v1::DiscoveryRequest r;
      if (std::exchange(first, false)) {
        r.mutable_node()->set_id(absl::StrCat("fanout-", id_));
        r.mutable_node()->set_service("fanout");
        r.mutable_node()->set_namespace_("default");
      }
      r.set_type_url(type);
      Send(std::move(r));
    }
    StartCall();
  }

  Clock::duration latency() const { return latency_; }
  void Cancel() { ctx_.TryCancel(); }

 private:
  void Send(outrigger::v1::DiscoveryRequest r) {
    if (const auto* next = writes_.Push(std::move(r))) StartWrite(next);
  }
  void OnWriteDone(bool ok) override {
    if (const auto* next = writes_.Done(ok)) StartWrite(next);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    outrigger::v1::DiscoveryRequest ack;
    ack.set_type_url(response_.type_url());
    ack.set_version_info(response_.version_info());
    ack.set_response_nonce(response_.nonce());
    const bool routes = response_.type_url() == kRouteType;
    const std::string version = response_.version_info();
    Send(std::move(ack));  // ACK first: the measurement is "received and acknowledged"
    if (routes) {
      if (first_routes_.empty()) {
        first_routes_ = version;
        std::lock_guard<std::mutex> lock(shared_->mu);
        ++shared_->initial_done;
        shared_->cv.notify_all();
      } else if (version != first_routes_ && !changed_ && shared_->measuring) {
        changed_ = true;
        latency_ = Clock::now() - shared_->change_at;
        std::lock_guard<std::mutex> lock(shared_->mu);
        ++shared_->changed_done;
        shared_->cv.notify_all();
      }
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& s) override {
    if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
      std::lock_guard<std::mutex> lock(shared_->mu);
      ++shared_->failed;
      shared_->cv.notify_all();
    }
  }

  const int id_;
  Shared* shared_;
  grpc::ClientContext ctx_;
  outrigger::v1::DiscoveryResponse response_;
  outrigger::xds::WriteQueue<outrigger::v1::DiscoveryRequest> writes_;
  std::string first_routes_;
  bool changed_ = false;
  Clock::duration latency_{};
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  outrigger::NormalizeFlagDashes(argc, argv);
  absl::ParseCommandLine(argc, argv);
  const std::string target = absl::GetFlag(FLAGS_control_plane);
  const int n = absl::GetFlag(FLAGS_streams);
  const int channels = std::max(1, absl::GetFlag(FLAGS_channels));
  const int pid = absl::GetFlag(FLAGS_control_plane_pid);
  const auto timeout = std::chrono::seconds(absl::GetFlag(FLAGS_timeout_seconds));

  const long rss_before = pid > 0 ? RssKb(pid) : -1;
  std::vector<std::unique_ptr<outrigger::v1::AggregatedDiscoveryService::Stub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("outrigger.fanout_channel", c);  // distinct args: a TCP connection each
    stubs.push_back(outrigger::v1::AggregatedDiscoveryService::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  Shared shared;
  std::vector<std::unique_ptr<FakeProxy>> proxies;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    proxies.push_back(std::make_unique<FakeProxy>(i, &shared));
    proxies.back()->Start(stubs[i % channels].get());
  }
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    if (!shared.cv.wait_for(lock, timeout, [&] {
          return shared.initial_done + shared.failed >= n;
        })) {
      std::fprintf(stderr, "xds_fanout: only %d of %d streams got their initial config\n",
                   shared.initial_done, n);
      return 1;
    }
  }
  const double connect_ms = Ms(Clock::now() - t0);
  // Let the control plane settle (registrations debounce into one recompute) before measuring.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long rss_connected = pid > 0 ? RssKb(pid) : -1;

  // The change: new canary weights through the admin API, as `outrigger canary` sends them.
  outrigger::v1::SetWeightsRequest req;
  const std::string route = absl::GetFlag(FLAGS_route);
  req.set_namespace_(route.substr(0, route.find('/')));
  req.set_route(route.substr(route.find('/') + 1));
  for (absl::string_view kv : absl::StrSplit(absl::GetFlag(FLAGS_weights), ',')) {
    const size_t eq = kv.find('=');
    (*req.mutable_weights())[std::string(kv.substr(0, eq))] =
        static_cast<uint32_t>(std::stoul(std::string(kv.substr(eq + 1))));
  }
  auto admin = outrigger::v1::MeshAdmin::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  shared.change_at = Clock::now();
  shared.measuring = true;
  grpc::ClientContext ctx;
  outrigger::v1::SetWeightsResponse resp;
  grpc::Status s = admin->SetWeights(&ctx, req, &resp);
  if (!s.ok()) {
    std::fprintf(stderr, "xds_fanout: SetWeights: %s\n", s.error_message().c_str());
    return 1;
  }
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.cv.wait_for(lock, timeout, [&] { return shared.changed_done >= n - shared.failed; });
  }
  std::vector<double> lat;
  for (const auto& p : proxies) {
    if (p->latency() != Clock::duration{}) lat.push_back(Ms(p->latency()));
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) {
    return lat.empty() ? -1.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(q * lat.size()))];
  };
  std::printf("streams=%d connected_ms=%.0f updated=%zu failed=%d p50_ms=%.1f p99_ms=%.1f "
              "max_ms=%.1f",
              n, connect_ms, lat.size(), shared.failed, pct(0.50), pct(0.99),
              lat.empty() ? -1.0 : lat.back());
  if (pid > 0) {
    std::printf(" cp_rss_before_kb=%ld cp_rss_connected_kb=%ld cp_kb_per_stream=%.1f", rss_before,
                rss_connected, static_cast<double>(rss_connected - rss_before) / n);
  }
  std::printf("\n");
  std::fflush(stdout);
  for (auto& p : proxies) p->Cancel();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::_Exit(lat.size() == static_cast<size_t>(n) ? 0 : 1);
}
