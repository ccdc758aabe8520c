// See identity_client.h.
#include "proxy/xds/identity_client.h"

#include <grpcpp/grpcpp.h>

#include <boost/asio/post.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "certs/certificate.h"
#include "certs/join_token.h"
#include "certs/key.h"
#include "outrigger/v1/identity.grpc.pb.h"
#include "xds/common/log.h"

namespace outrigger::proxy {

namespace asio = boost::asio;

absl::StatusOr<std::unique_ptr<IdentityClient>> IdentityClient::Create(
    asio::io_context& main, std::string server, std::string bundle_pem, std::string join_token,
    std::string node_id, OnCertificate on_certificate) {
  auto claims = certs::ReadJoinToken(join_token);
  if (!claims.ok()) return claims.status();
  if (auto roots = certs::Certificate::ChainFromPem(bundle_pem); !roots.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("trust bundle: ", roots.status().message()));
  }
  auto c = std::unique_ptr<IdentityClient>(new IdentityClient(main));
  c->server_ = std::move(server);
  c->bundle_pem_ = std::move(bundle_pem);
  c->join_token_ = std::move(join_token);
  c->node_id_ = std::move(node_id);
  c->id_ = claims->id;
  c->on_certificate_ = std::move(on_certificate);
  return c;
}

void IdentityClient::Start() { Request(); }

void IdentityClient::Stop() {
  alive_.reset();
  timer_.cancel();
}

void IdentityClient::ScheduleIn(absl::Duration d) {
  timer_.expires_after(absl::ToChronoNanoseconds(std::max(d, absl::Milliseconds(10))));
  std::weak_ptr<bool> alive = alive_;
  timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (!ec && !alive.expired()) Request();
  });
}

struct IdentityClient::Call {
  grpc::ClientContext context;
  v1::SignRequest request;
  v1::SignResponse response;
  std::string key_pem;
};

void IdentityClient::Request() {
  if (in_flight_ || !alive_) return;
  in_flight_ = true;
  // A fresh key for every certificate: a renewal also rotates the key.
  auto key = certs::PrivateKey::GenerateP256();
  if (!key.ok()) return OnResult(key.status());
  auto csr = certs::CreateCsr(*key, id_);
  if (!csr.ok()) return OnResult(csr.status());

  // First contact: TLS verifying the control plane, authenticated by the join token. Renewal:
  // mTLS with the current certificate (the token may have expired by then). Channels live as
  // members and are replaced only when the certificate changes: gRPC must never tear a channel
  // down from inside one of its own completion callbacks.
  if (!stub_ || channel_generation_ != certificate_generation_) {
    std::optional<xds::GrpcIdentity> client_identity;
    if (current_) client_identity = current_->identity;
    retired_channel_ = std::move(channel_);  // kept one generation, in case a call still uses it
    channel_ = grpc::CreateChannel(
        server_, xds::MeshChannelCredentials(
                     bundle_pem_, xds::ControlPlaneSpiffeId(id_.trust_domain), client_identity));
    stub_ = v1::MeshCertificates::NewStub(channel_);
    channel_generation_ = certificate_generation_;
  }
  auto call = std::make_shared<Call>();
  call->request.set_csr_pem(*csr);
  if (!current_) call->request.set_join_token(join_token_);
  call->request.set_node_id(node_id_);
  call->key_pem = key->ToPem();
  call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::weak_ptr<bool> alive = alive_;
  Call* raw = call.get();
  stub_->async()->Sign(
      &raw->context, &raw->request, &raw->response,
      [this, call, alive](grpc::Status status) mutable {
        // Everything is decided and released on the main thread, never on gRPC's.
        asio::post(main_, [this, alive, call = std::move(call), status]() {
          if (!alive.expired()) OnResult(Decode(status, *call));
        });
      });
}

absl::StatusOr<WorkloadCertificate> IdentityClient::Decode(const grpc::Status& status,
                                                           const Call& call) const {
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("certificate request to ", server_, " failed: ",
                                               status.error_message()));
  }
  WorkloadCertificate cert;
  cert.identity = {call.key_pem, call.response.certificate_chain_pem()};
  cert.bundle_pem = call.response.trust_bundle_pem();
  auto leaf = certs::Certificate::FromPem(cert.identity.chain_pem);
  if (!leaf.ok() || !leaf->spiffe_id() || !(*leaf->spiffe_id() == id_)) {
    return absl::InternalError("the control plane answered with a certificate for another "
                               "identity");
  }
  cert.spiffe_id = leaf->spiffe_id()->ToString();
  cert.not_after = leaf->not_after();
  return cert;
}

void IdentityClient::OnResult(absl::StatusOr<WorkloadCertificate> result) {
  in_flight_ = false;
  const absl::Time now = absl::Now();
  if (!result.ok()) {
    ++failures_;
    // Retry with capped, jittered backoff; a certificate still valid keeps serving meanwhile.
    const int exp = std::min(attempt_++, 5);
    std::mt19937_64 rng(static_cast<uint64_t>(absl::ToUnixNanos(now)));
    const absl::Duration wait =
        absl::Milliseconds(250 << exp) * (0.5 + std::uniform_real_distribution<>(0, 0.5)(rng));
    LogWarning(result.status().message(), "; retrying in ", absl::FormatDuration(wait));
    ScheduleIn(wait);
    return;
  }
  attempt_ = 0;
  if (current_) ++renewals_;
  current_ = *std::move(result);
  ++certificate_generation_;
  if (!current_->bundle_pem.empty()) bundle_pem_ = current_->bundle_pem;
  LogInfo("certificate for ", current_->spiffe_id, " valid until ",
          absl::FormatTime(absl::RFC3339_sec, current_->not_after, absl::UTCTimeZone()));
  on_certificate_(*current_);
  // Renew at about half the remaining lifetime (40-60 %), so many sidecars never renew at once.
  std::mt19937_64 rng(static_cast<uint64_t>(absl::ToUnixNanos(now)));
  const double share = 0.4 + std::uniform_real_distribution<>(0, 0.2)(rng);
  ScheduleIn((current_->not_after - now) * share);
}

}  // namespace outrigger::proxy
