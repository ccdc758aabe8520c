// See certificate_service.h.
#include "controlplane/identity/certificate_service.h"

#include "absl/strings/str_cat.h"
#include "certs/certificate.h"
#include "certs/join_token.h"
#include "xds/common/log.h"
#include "xds/grpc_tls.h"

namespace outrigger::controlplane {

grpc::ServerUnaryReactor* CertificateService::Sign(grpc::CallbackServerContext* context,
                                                   const v1::SignRequest* request,
                                                   v1::SignResponse* response) {
  grpc::Status status = DoSign(context, *request, response);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++(status.ok() ? signed_ : refused_);
  }
  if (!status.ok()) {
    LogWarning("certificate request from ", context->peer(), " (node '", request->node_id(),
               "') refused: ", status.error_message());
  }
  auto* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::Status CertificateService::DoSign(grpc::CallbackServerContext* context,
                                        const v1::SignRequest& request,
                                        v1::SignResponse* response) {
  const absl::Time now = absl::Now();
  // Who may this caller become? A join token names one identity; a renewal is for the identity
  // of the certificate the caller already holds.
  certs::SpiffeId expected;
  if (!request.join_token().empty()) {
    auto claims = certs::VerifyJoinToken(identity_->token_secret(), request.join_token(), now);
    if (!claims.ok()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          std::string(claims.status().message()));
    }
    expected = claims->id;
  } else {
    auto peer = xds::PeerSpiffeId(*context->auth_context());
    if (!peer) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "a certificate request needs a join token or the caller's mesh "
                          "certificate (mTLS)");
    }
    auto parsed = certs::ParseSpiffeId(*peer);
    if (!parsed.ok()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("caller certificate: ", parsed.status().message()));
    }
    expected = *parsed;
  }
  if (expected.trust_domain != identity_->trust_domain()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("identity ", expected.ToString(), " is not in trust domain ",
                                     identity_->trust_domain()));
  }
  auto chain = identity_->ca().Sign(request.csr_pem(), expected, identity_->cert_ttl(), now);
  if (!chain.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(chain.status().message()));
  }
  auto leaf = certs::Certificate::FromPem(*chain);
  if (!leaf.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "issued an unreadable chain");
  response->set_certificate_chain_pem(*chain);
  response->set_trust_bundle_pem(identity_->bundle_pem());
  response->mutable_not_after()->set_seconds(absl::ToUnixSeconds(leaf->not_after()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    issued_[request.node_id()] = {expected.ToString(), leaf->not_after(), now};
  }
  LogInfo("issued ", expected.ToString(), " to node '", request.node_id(), "' until ",
          absl::FormatTime(absl::RFC3339_sec, leaf->not_after(), absl::UTCTimeZone()),
          request.join_token().empty() ? " (renewal)" : " (join token)");
  return grpc::Status::OK;
}

std::map<std::string, IssuedCertificate> CertificateService::Issued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return issued_;
}

uint64_t CertificateService::signed_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return signed_;
}

uint64_t CertificateService::refused_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

}  // namespace outrigger::controlplane
