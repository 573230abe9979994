// The ACME validator alone: validates the challenges the API started, holding no key,
// no PIN and no token session (validation connects to hosts requesters name). Compose runs
// it as a role of its own (PKI_ACME_VALIDATOR=external on the API); an API process starts
// the same code as its child otherwise. Only the validator's own module is imported: the
// package's index would bring in the issuing pipeline and its PKCS#11 binding.
import { runAcmeValidator } from "@pki/acme/validator-process";

runAcmeValidator().catch((error: unknown) => {
  console.error(`acme-validator: ${(error as Error).message}`);
  process.exit(1);
});
