export { cnGrantProblem, compileNamePattern, sanAllowed, type NamePattern, type PatternType } from "./patterns.ts";
export { ProvisionerPolicy, MAX_PATTERNS, type ProvisionerPolicyParams } from "./provisioner.ts";
export { createProvisioner, updateProvisioner, newProvisionerToken, type NewProvisionerRequest, type ProvisionerChanges } from "./provisioning.ts";
export { ADMIN_NAME, addOperator, assertAdminName, listOperators, newAdminToken, removeOperator } from "./operators.ts";
