// Revocation publishing: when and what to sign so relying parties always find a fresh
// answer. The CRL publisher and the OCSP pre-signer run on the issuing token through the
// authority's keyring; the relying-party view checks the result as a client would.
export { CrlPublisher, type CrlPublisherDeps } from "./crl/publisher.ts";
export { OcspSigner, destroyExpiredResponderKeys, RESPONDER_KEY_GRACE_MS, type DestroyedResponderKey, type LiveItem, type OcspSignerDeps } from "./ocsp/signer.ts";
// The ETag of a pre-signed answer, shared with the keyless responder through @pki/base.
export { derEtag } from "@pki/base";
export { relyingPartyView, RELYING_PARTY_LIMITS, type RelyingPartyLimits, type OcspView, type CrlView } from "./relying-party.ts";
