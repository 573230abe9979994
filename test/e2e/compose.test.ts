// docker-compose.yml is validated by the compose client (no Docker engine runs here), and
// its services are checked for what production needs: healthchecks, secrets from files,
// non-root read-only containers, an OCSP responder that holds no token or PIN.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/harness.ts";
import { run, which } from "../support/tools.ts";

const compose = which("docker-compose") ? ["docker-compose"] : ["docker", "compose"];

function composeConfig(): { status: number; stdout: string; stderr: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "pki-compose-"));
  cpSync(path.join(REPO_ROOT, "docker-compose.yml"), path.join(dir, "docker-compose.yml"));
  cpSync(path.join(REPO_ROOT, "deploy"), path.join(dir, "deploy"), { recursive: true });
  cpSync(path.join(REPO_ROOT, "Dockerfile"), path.join(dir, "Dockerfile"));
  mkdirSync(path.join(dir, "secrets"));
  const perRole = ["migrate", "api", "ocsp", "crl", "scheduler", "validator"].flatMap((r) => [`db_password_${r}`, `database_url_${r}`]);
  for (const secret of ["postgres_password", "issuing_pin", "root_pin", "admin_token", ...perRole]) writeFileSync(path.join(dir, "secrets", secret), "x\n");
  return run(compose[0]!, [...compose.slice(1), "config"], { cwd: dir });
}

describe("docker-compose.yml", () => {
  it("is valid for the compose client", () => {
    const result = composeConfig();
    expect(result.stderr).not.toMatch(/error|invalid/i);
    expect(result.status).toBe(0);
    for (const service of ["postgres:", "migrate:", "init:", "api:", "acme-validator:", "ocsp-responder:", "crl-publisher:", "scheduler:", "edge:"]) expect(result.stdout).toContain(service);
  });

  it("runs every role from one image, non-root, read-only, with healthchecks and file secrets", () => {
    const text = readFileSync(path.join(REPO_ROOT, "docker-compose.yml"), "utf8");
    const dockerfile = readFileSync(path.join(REPO_ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^USER pki$/m);
    expect(dockerfile).toMatch(/^FROM .* AS build$/m);
    expect(text).toMatch(/read_only: true/);
    // each role runs its app as compiled when the image is built, with plain Node
    for (const role of ["api", "ocsp-responder", "crl-publisher", "scheduler"]) {
      expect(text).toContain(`command: ["dist/${role}/main.js"]`);
    }
    expect(dockerfile).toMatch(/node apps\/server\/build-dist\.mjs dist/);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node"\]$/m);
    expect(`${text}\n${dockerfile}`).not.toMatch(/"tsx"|--import tsx|src\/main\.ts/);
    expect(text.match(/healthcheck: \*readyz/g)).toHaveLength(5);
    expect(text).not.toMatch(/PIN:\s*\S/); // PINs only ever by *_FILE
    const ocsp = text.slice(text.indexOf("ocsp-responder:\n"), text.indexOf("crl-publisher:\n"));
    expect(ocsp).not.toMatch(/PIN|tokens:/);
    // the ACME validator connects to hosts requesters name: no token, no PIN, its own database user
    const validator = text
      .slice(text.indexOf("  acme-validator:\n"), text.indexOf("  ocsp-responder:\n"))
      .split("\n")
      .filter((line) => !line.trim().startsWith("#"))
      .join("\n");
    expect(validator).toContain('command: ["dist/acme-validator/main.js"]');
    expect(validator).not.toMatch(/PIN|pin|tokens:|database_url_api/);
    expect(text.slice(text.indexOf("  api:\n"), text.indexOf("  acme-validator:\n"))).toMatch(/PKI_ACME_VALIDATOR: external/);
  });

  it("builds images from an explicit list of paths, so secrets/ and .pki/ can never be baked in", () => {
    const dockerfile = readFileSync(path.join(REPO_ROOT, "Dockerfile"), "utf8");
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).slice(0, -1));
    expect(copied.length).toBeGreaterThan(0);
    for (const source of copied) {
      expect(source).not.toMatch(/^\.\/?$|\*/); // no whole-context or wildcard copies
      expect(["secrets", ".pki", ".git", "node_modules"].some((secret) => source === secret || source.startsWith(`${secret}/`))).toBe(false);
    }
    expect(readFileSync(path.join(REPO_ROOT, ".gitignore"), "utf8")).toMatch(/^secrets\/$/m);
    // at any depth: a data dir or secrets folder made inside apps/ would otherwise ride along with COPY apps
    for (const pattern of ["**/secrets", "**/.pki"]) expect(readFileSync(path.join(REPO_ROOT, ".dockerignore"), "utf8").split("\n")).toContain(pattern);
  });

  it("gives the API's TLS certificate the names clients use, and relying parties a plain-HTTP public URL", () => {
    const api = composeConfig().stdout;
    expect(api).toMatch(/PKI_API_TLS_NAMES: localhost,127\.0\.0\.1/);
    expect(api).toMatch(/PKI_PUBLIC_URL: http:\/\//);
    const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    // the README's compose command names an http:// public URL: the edge serves plain HTTP
    for (const m of readme.matchAll(/PKI_PUBLIC_URL=(\S+) .*docker.compose up/g)) expect(m[1]).toMatch(/^http:\/\//);
  });

  it("gives each role its own database user, and migrates once before the roles start", () => {
    const result = composeConfig();
    expect(result.status, result.stderr).toBe(0);
    type Service = { environment?: Record<string, string>; secrets?: Array<{ source: string } | string>; depends_on?: Record<string, { condition: string }>; command?: string[] };
    const services = (parse(result.stdout) as { services: Record<string, Service> }).services;
    const secretsOf = (name: string) => (services[name]!.secrets ?? []).map((s) => (typeof s === "string" ? s : s.source));
    const users: Record<string, string> = { migrate: "migrate", init: "migrate", api: "api", "ocsp-responder": "ocsp", "crl-publisher": "crl", scheduler: "scheduler" };
    for (const [service, user] of Object.entries(users)) {
      expect(services[service]!.environment!.DATABASE_URL_FILE, service).toBe(`/run/secrets/database_url_${user}`);
      // no other role's credentials are mounted
      expect(
        secretsOf(service).filter((s) => s.startsWith("database_url")),
        service,
      ).toEqual([`database_url_${user}`]);
    }
    expect(services.migrate!.command).toEqual(["dist/cli/main.js", "migrate", "--grant-roles"]);
    expect(services.init!.depends_on!.migrate!.condition).toBe("service_completed_successfully");
    for (const role of ["api", "ocsp-responder", "crl-publisher", "scheduler"]) expect(services[role]!.depends_on!.init!.condition).toBe("service_completed_successfully");
    // the superuser's password reaches only the database server
    for (const [name] of Object.entries(services).filter(([n]) => n !== "postgres")) expect(secretsOf(name), name).not.toContain("postgres_password");
  });
});
