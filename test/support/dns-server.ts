// A tiny authoritative DNS server for ACME tests: every A question is answered with
// 127.0.0.1 (so any test name reaches the clients on loopback), TXT questions with the
// records a test set (dns-01), and everything else with an empty answer.
import { createSocket, type Socket } from "node:dgram";

export interface TestDnsServer {
  /** host:port, for PKI_ACME_RESOLVER */
  address: string;
  setTxt(name: string, values: string[]): void;
  stop(): Promise<void>;
}

function readName(msg: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let i = offset;
  while (msg[i]) {
    const len = msg[i] as number;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString("ascii"));
    i += len + 1;
  }
  return { name: labels.join(".").toLowerCase(), next: i + 1 };
}

export async function startTestDns(): Promise<TestDnsServer> {
  const txt = new Map<string, string[]>();
  const socket: Socket = createSocket("udp4");
  socket.on("message", (msg, rinfo) => {
    if (msg.length < 12) return;
    const { name, next } = readName(msg, 12);
    const qtype = msg.readUInt16BE(next);
    const question = msg.subarray(12, next + 4);
    const answers: Buffer[] = [];
    const record = (type: number, data: Buffer) => {
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      rr.writeUInt16BE(type, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(1, 6);
      rr.writeUInt16BE(data.length, 10);
      answers.push(Buffer.concat([rr, data]));
    };
    if (qtype === 1) record(1, Buffer.from([127, 0, 0, 1]));
    if (qtype === 16) {
      for (const value of txt.get(name) ?? []) {
        const bytes = Buffer.from(value, "utf8");
        record(16, Buffer.concat([Buffer.from([bytes.length]), bytes]));
      }
    }
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100), 2); // response, authoritative, RD copied
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    socket.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    setTxt: (name, values) => void txt.set(name.toLowerCase().replace(/\.$/, ""), values),
    stop: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
