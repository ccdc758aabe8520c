// The `outrigger.dev/v1alpha1` `Mesh` kind: mesh-wide settings (trust domain, default request
// timeout, how long a disconnected proxy's endpoints are kept, mTLS mode, HTTP/2 between
// sidecars). Cluster-scoped, at most one per
// policy; without one, PolicySet::mesh keeps its defaults.
#include "absl/strings/str_cat.h"
#include "controlplane/policy/field_checks.h"
#include "controlplane/policy/kinds/kind_support.h"

namespace outrigger::policy {
namespace {

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::Mesh msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  Mesh mesh;
  mesh.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  const v1::MeshSpec& spec = msg.spec();
  if (!spec.trust_domain().empty()) {
    err.Check("spec.trustDomain", CheckTrustDomain(spec.trust_domain()));
    mesh.trust_domain = spec.trust_domain();
  }
  if (!spec.default_timeout().empty()) {
    mesh.default_timeout = DurationField("spec.defaultTimeout", spec.default_timeout(), &err);
  }
  if (!spec.endpoint_grace_period().empty()) {
    if (auto d = DurationField("spec.endpointGracePeriod", spec.endpoint_grace_period(), &err)) {
      mesh.endpoint_grace_period = *d;
    }
  }
  if (!spec.mtls().empty()) {
    if (spec.mtls() != "STRICT" && spec.mtls() != "PERMISSIVE" && spec.mtls() != "DISABLE") {
      err.Add("spec.mtls", absl::StrCat("'", spec.mtls(),
                                        "' is not STRICT, PERMISSIVE or DISABLE"));
    } else {
      mesh.mtls = spec.mtls();
    }
  }
  if (spec.h2_upgrade_policy() == "UPGRADE") {
    mesh.h2_upgrade = true;
  } else if (!spec.h2_upgrade_policy().empty() && spec.h2_upgrade_policy() != "DO_NOT_UPGRADE") {
    err.Add("spec.h2UpgradePolicy", absl::StrCat("'", spec.h2_upgrade_policy(),
                                                 "' is not UPGRADE or DO_NOT_UPGRADE"));
  }
  if (!set->mesh.meta.name.empty()) {
    err.Add("metadata.name", absl::StrCat("a policy has at most one Mesh; '", set->mesh.meta.name,
                                          "' is defined at ", set->mesh.meta.source.ToString()));
    return;
  }
  set->mesh = std::move(mesh);
}

}  // namespace

const PolicyKind& MeshKind() {
  static const PolicyKind kind{"outrigger.dev/v1alpha1", "Mesh", /*namespaced=*/false, &Load,
                               nullptr};
  return kind;
}

}  // namespace outrigger::policy
