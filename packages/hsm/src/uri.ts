// RFC 7512 `pkcs11:` URIs: the only way the rest of the CA names a key. Object handles
// change between runs, labels and ids do not.

export interface KeyAddress {
  token: string;
  object: string;
  /** CKA_ID, bytes */
  id?: Buffer;
}

function encode(value: string): string {
  // RFC 7512 §2.3: pchar minus ';' etc.; percent-encode everything outside unreserved.
  return Array.from(Buffer.from(value, "utf8"))
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).padStart(2, "0").toUpperCase()}`;
    })
    .join("");
}

function decode(value: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === "%") {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error(`bad percent-encoding in pkcs11 URI near '${value.slice(i, i + 3)}'`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, "utf8"));
    }
  }
  return Buffer.from(bytes);
}

export function formatKeyUri(address: KeyAddress): string {
  const parts = [`token=${encode(address.token)}`, `object=${encode(address.object)}`];
  if (address.id)
    parts.push(
      `id=${Array.from(address.id)
        .map((b) => `%${b.toString(16).padStart(2, "0")}`)
        .join("")}`,
    );
  parts.push("type=private");
  return `pkcs11:${parts.join(";")}`;
}

export function parseKeyUri(uri: string): KeyAddress {
  if (!uri.startsWith("pkcs11:")) throw new Error("a key URI must start with 'pkcs11:'");
  const path = uri.slice("pkcs11:".length).split("?")[0]!;
  const attrs = new Map<string, string>();
  for (const part of path.split(";")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    if (eq < 1) throw new Error(`malformed pkcs11 URI attribute '${part}'`);
    attrs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const token = attrs.get("token");
  const object = attrs.get("object");
  if (!token || !object) throw new Error("a key URI needs both 'token' and 'object' attributes");
  const id = attrs.get("id");
  return { token: decode(token).toString("utf8"), object: decode(object).toString("utf8"), ...(id ? { id: decode(id) } : {}) };
}
