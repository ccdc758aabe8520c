// The `outrigger.dev/v1alpha1` `MeshTLS` kind (like Istio's PeerAuthentication): whether the
// sidecars of a Service's workloads (its targetRef) or, without a targetRef, of every workload of
// the namespace accept mTLS only (STRICT), mTLS and plaintext (PERMISSIVE) or plaintext only
// (DISABLE) on their inbound port. Applies when the mesh CA is on. A namespace takes at most one
// namespace-wide MeshTLS and a Service at most one MeshTLS; which one applies to a workload is
// decided per proxy (controlplane/mesh/inbound_policy.h).
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "controlplane/policy/kinds/kind_support.h"

namespace outrigger::policy {
namespace {

void Load(const PolicyDocument& doc, PolicySet* set, PolicyErrors* errors) {
  v1::MeshTLS msg;
  auto fields = ParseDocument(doc, &msg, errors);
  if (fields == nullptr) return;
  FieldErrors err(*fields, errors);
  MeshTls tls;
  tls.meta = ConvertMeta(doc, msg.metadata(), fields, &err);
  const v1::MeshTLSSpec& spec = msg.spec();
  if (spec.has_target_ref()) {
    tls.target_name = TargetServiceName(spec.target_ref(), "a MeshTLS", &err);
  }
  const std::string& mode = spec.mode();
  if (mode.empty()) {
    err.Add("spec.mode", "required: STRICT, PERMISSIVE or DISABLE");
  } else if (mode != "STRICT" && mode != "PERMISSIVE" && mode != "DISABLE") {
    err.Add("spec.mode", absl::StrCat("'", mode, "' is not STRICT, PERMISSIVE or DISABLE"));
  } else {
    tls.mode = mode;
  }
  set->mesh_tls.emplace(tls.meta.key(), std::move(tls));
}

// The target Service must exist; one MeshTLS per Service and one namespace-wide MeshTLS per
// namespace (the second, in file order, is the error; it names where the first is).
void Check(const PolicySet& set, PolicyErrors* errors) {
  std::map<ObjectKey, const MeshTls*> by_target;  // {ns, ""} for namespace-wide ones
  for (const MeshTls* tls : InFileOrder(set, "MeshTLS", set.mesh_tls)) {
    const ObjectKey target = tls->target();
    const bool namespace_wide = tls->target_name.empty();
    if (!namespace_wide &&
        !CheckTargetServiceDefined(set, tls->meta, target, "a MeshTLS", errors)) {
      continue;
    }
    auto [first, fresh] = by_target.emplace(target, tls);
    if (fresh) continue;
    const MeshTls& other = *first->second;
    // A namespace-wide MeshTLS has no targetRef: the error points at its spec.
    const std::string path = namespace_wide ? "spec" : "spec.targetRef.name";
    const std::string other_at =
        other.meta.fields->Locate(path).value_or(other.meta.source.ToString());
    errors->Add(
        *tls->meta.fields, path,
        namespace_wide
            ? absl::StrCat("namespace ", target.ns, " already has a namespace-wide MeshTLS, ",
                           other.meta.key().ToString(), " (at ", other_at,
                           "); a namespace takes one: merge them, or give this one a "
                           "targetRef")
            : absl::StrCat("Service ", target.ToString(), " already has MeshTLS ",
                           other.meta.key().ToString(), " (at ", other_at,
                           "); a Service takes one MeshTLS"));
  }
}

}  // namespace

const PolicyKind& MeshTlsKind() {
  static const PolicyKind kind{"outrigger.dev/v1alpha1", "MeshTLS", /*namespaced=*/true, &Load,
                               &Check};
  return kind;
}

}  // namespace outrigger::policy
