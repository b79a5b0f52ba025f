// Helpers for the browser tests: signing veche commands with Node's own Ed25519, committing
// content, and starting and stopping release servers on loopback.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from "node:crypto";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export class Key {
  constructor(seed = randomBytes(32)) {
    this.private = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
    this.public = createPublicKey(this.private).export({ format: "der", type: "spki" }).subarray(-32).toString("hex");
  }

  static fromFile(path) {
    return new Key(Buffer.from(readFileSync(path, "utf8").trim(), "hex"));
  }
}

/** A committed field: the commitment for the payload and the piece for the envelope. */
export function commit(text, pieces) {
  const salt = randomBytes(16);
  const commitment = createHash("sha256").update("veche content v2\n").update(salt).update(text, "utf8").digest("hex");
  pieces.push({ salt: salt.toString("hex"), text });
  return commitment;
}

export function envelope(key, action, body, pieces = []) {
  const payload = JSON.stringify({
    action,
    author: key.public,
    nonce: randomBytes(16).toString("hex"),
    issued_at: new Date().toISOString(),
    body,
  });
  const signature = sign(null, Buffer.from("veche command v1\n" + payload, "utf8"), key.private).toString("hex");
  return pieces.length ? { payload, signature, content: pieces } : { payload, signature };
}

export class Client {
  constructor(base) {
    this.base = base;
  }

  async get(path) {
    const response = await fetch(this.base + path);
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  }

  async send(path, key, action, body, pieces = []) {
    const response = await fetch(this.base + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(envelope(key, action, body, pieces)),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${action} at ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor(url, timeoutMs = 120000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** Starts `veche serve` on a fixed loopback port and waits until it is ready. */
export async function startServer(binary, dataDir, port, logFile) {
  const { openSync } = await import("node:fs");
  const log = openSync(logFile, "a");
  const child = spawn(
    binary,
    ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--commands-per-address-per-minute", "0", "--registrations-per-address-per-hour", "0"],
    { stdio: ["ignore", log, log] },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const base = `http://127.0.0.1:${port}`;
  await Promise.race([waitFor(`${base}/readyz`), exited.then((code) => Promise.reject(new Error(`veche serve exited with ${code}; see ${logFile}`)))]);
  return {
    base,
    child,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export function adminKey(dataDir) {
  return Key.fromFile(join(dataDir, "admin.key"));
}
