import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect, type Connection } from "./connection.ts";

const dir = mkdtempSync(path.join(tmpdir(), "pki-embedded-"));
let connection: Connection | undefined;

afterAll(async () => {
  await connection?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the embedded database", () => {
  it("runs with the footprint settings (PostgreSQL's 128 MB of shared buffers were all resident)", async () => {
    connection = await connect({ url: undefined, embeddedDir: dir, embeddedRole: "server" });
    const setting = async (name: string) => (await connection!.sql.query<{ value: string }>("SELECT current_setting($1) AS value", [name]))[0]?.value;
    expect(await setting("shared_buffers")).toBe("4MB");
    expect(await setting("wal_buffers")).toBe("512kB");
    expect(await setting("max_connections")).toBe("10");
    // and it still does what the CA needs of it: the inventory's tables, pg_trgm searches
    expect((await connection.sql.query<{ n: string }>("SELECT count(*) AS n FROM certificates WHERE search_text % 'example'"))[0]?.n).toBe("0");
  });
});
