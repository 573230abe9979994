import { PROFILE_NAMES, badRequest, forbidden, formatSan, isProfileName, type ProfileName, type San } from "@pki/x509";
import { cnGrantProblem, compileNamePattern, sanAllowed, type NamePattern } from "./patterns.ts";

/** What an admin grants a provisioner. Validated once, when it is created. */
export interface ProvisionerPolicyParams {
  name: string;
  profiles: string[];
  names: string[];
  maxTtlSeconds: number;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const MAX_PATTERNS = 200;

/**
 * A provisioner's scope: which profiles, which names, how long. Every check throws a
 * CaError whose message names the provisioner and the exact thing refused.
 */
export class ProvisionerPolicy {
  private constructor(
    readonly name: string,
    readonly profiles: readonly ProfileName[],
    readonly patterns: readonly NamePattern[],
    readonly maxTtlSeconds: number,
  ) {}

  /** Checks an admin's request; a bad pattern, profile or lifetime is a 400 naming it. */
  static create(params: ProvisionerPolicyParams): ProvisionerPolicy {
    if (!NAME.test(params.name)) throw badRequest(`provisioner name '${params.name}' must be 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`);
    if (params.profiles.length === 0) throw badRequest(`provisioner '${params.name}' needs at least one profile (${PROFILE_NAMES.join(", ")})`);
    for (const profile of params.profiles) {
      if (!isProfileName(profile)) throw badRequest(`unknown profile '${profile}'; use one of ${PROFILE_NAMES.join(", ")}`);
    }
    if (params.names.length === 0) throw badRequest(`provisioner '${params.name}' needs at least one name pattern, e.g. DNS:.svc.example.com`);
    if (params.names.length > MAX_PATTERNS) throw badRequest(`provisioner '${params.name}' has ${params.names.length} name patterns; at most ${MAX_PATTERNS} are allowed`);
    if (!Number.isInteger(params.maxTtlSeconds) || params.maxTtlSeconds < 60) throw badRequest("maxTtlSeconds must be a whole number of seconds, at least 60");
    const patterns = params.names.map(compileNamePattern);
    return new ProvisionerPolicy(params.name, [...new Set(params.profiles as ProfileName[])], patterns, params.maxTtlSeconds);
  }

  /** The policy a stored provisioner grants, as it is now (not as it was at enrolment). */
  static of(provisioner: Pick<ProvisionerPolicyParams, "name" | "profiles" | "names" | "maxTtlSeconds">): ProvisionerPolicy {
    return ProvisionerPolicy.create({ name: provisioner.name, profiles: provisioner.profiles, names: provisioner.names, maxTtlSeconds: provisioner.maxTtlSeconds });
  }

  /** The patterns in the form they are stored and shown. */
  get names(): string[] {
    return this.patterns.map((p) => p.text);
  }

  authorizeProfile(profile: ProfileName): void {
    if (!this.profiles.includes(profile)) {
      throw forbidden(`profile '${profile}' is not allowed for provisioner '${this.name}' (allowed: ${this.profiles.join(", ")})`);
    }
  }

  /**
   * Every SAN must match a pattern of its type. The CN must either be one of the SANs
   * (host names and addresses are added as SANs by the CA) or match a CN: pattern.
   */
  authorizeNames(names: { commonName: string | undefined; sans: readonly San[] }): void {
    for (const san of names.sans) {
      if (!sanAllowed(this.patterns, san)) throw forbidden(`SAN ${formatSan(san)} is not allowed for provisioner '${this.name}'`);
    }
    const cn = names.commonName;
    if (cn !== undefined && !names.sans.some((s) => s.value === cn) && !this.patterns.some((p) => p.type === "CN" && p.matches(cn))) {
      const why = this.patterns.some((p) => p.type === "CN") ? cnGrantProblem(cn) : undefined;
      throw forbidden(`CN '${cn}' is not allowed for provisioner '${this.name}'${why ? `: ${why}` : ""}`);
    }
  }
}
