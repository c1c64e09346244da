/**
 * Secrets at rest: connection profiles' secret options are sealed with
 * AES-256-GCM (WebCrypto) before they reach the database, bound to the row
 * they belong to (a sealed value copied to another profile does not open).
 *
 * The key is RUNNEL_SECRET_KEY (base64 of 32 bytes), or else a key file the
 * first start creates in the data directory with mode 0600. Every sealed
 * value names its key by id, so a key ring can open values sealed with the
 * previous key (RUNNEL_SECRET_KEY_PREVIOUS, or the files `runnel secrets
 * rotate-key` leaves) while the control plane re-seals them with the current
 * one at start.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

/** What a profile's `secrets` column holds: the names in clear (the API lists them), the values sealed. */
export interface SealedSecrets {
  sealed: string;
  keys: string[];
}

export const KEY_FILE = "secret.key";
/** Left by `runnel secrets rotate-key`: the key before the current one, and the one a rotation was switching to. */
export const PREVIOUS_KEY_FILE = "secret.key.previous";
export const NEXT_KEY_FILE = "secret.key.next";

const VERSION = "v1";

export class SecretKeyError extends Error {}

/** 32 random bytes as base64: a new key. */
export const newSecretKey = () => randomBytes(32).toString("base64");

export function parseKey(text: string, where: string): Uint8Array<ArrayBuffer> {
  const trimmed = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64");
  if (bytes.length !== 32) {
    throw new SecretKeyError(`${where} must hold a 256-bit key as base64 (44 characters) or hex (64); make one with: openssl rand -base64 32`);
  }
  return new Uint8Array(bytes);
}

const keyId = (raw: Uint8Array) => createHash("sha256").update(raw).digest("hex").slice(0, 12);

interface Key {
  id: string;
  crypto: CryptoKey;
}

async function importKey(raw: Uint8Array<ArrayBuffer>): Promise<Key> {
  const crypto = await globalThis.crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { id: keyId(raw), crypto };
}

/** Reads the key file, creating it (0600, exclusively: two control planes starting together agree) when missing. */
export function readOrCreateKeyFile(dataDir: string): { key: string; created: boolean } {
  const path = join(dataDir, KEY_FILE);
  if (!existsSync(path)) {
    const key = newSecretKey();
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${key}\n`);
      closeSync(fd);
      return { key, created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  return { key: readFileSync(path, "utf8"), created: false };
}

export interface KeySource {
  secretKey?: string;
  previousSecretKey?: string;
  dataDir: string;
}

export class SecretBox {
  private constructor(
    private current: Key,
    private ring: Map<string, Key>,
    private readonly source: KeySource,
    /** Where the current key came from, for messages. */
    readonly origin: string,
  ) {}

  /** The key ring: the current key (environment or key file) and whatever previous ones are at hand. */
  static async open(source: KeySource): Promise<SecretBox> {
    const { current, ring, origin } = await SecretBox.load(source);
    return new SecretBox(current, ring, source, origin);
  }

  private static async load(source: KeySource) {
    let origin: string;
    let currentText: string;
    if (source.secretKey) {
      currentText = source.secretKey;
      origin = "RUNNEL_SECRET_KEY";
    } else {
      currentText = readOrCreateKeyFile(source.dataDir).key;
      origin = join(source.dataDir, KEY_FILE);
    }
    const current = await importKey(parseKey(currentText, origin));
    const ring = new Map<string, Key>([[current.id, current]]);
    const others: [string, string][] = [];
    if (source.previousSecretKey) others.push([source.previousSecretKey, "RUNNEL_SECRET_KEY_PREVIOUS"]);
    for (const file of [PREVIOUS_KEY_FILE, NEXT_KEY_FILE, ...(source.secretKey ? [KEY_FILE] : [])]) {
      const path = join(source.dataDir, file);
      if (existsSync(path)) others.push([readFileSync(path, "utf8"), path]);
    }
    for (const [text, where] of others) {
      const k = await importKey(parseKey(text, where));
      if (!ring.has(k.id)) ring.set(k.id, k);
    }
    return { current, ring, origin };
  }

  get currentKeyId(): string {
    return this.current.id;
  }

  /** Seals `values` for the row `context` names (e.g. `profile:cp_123`). */
  async seal(values: Record<string, string>, context: string): Promise<SealedSecrets> {
    const iv = randomBytes(12);
    const data = new TextEncoder().encode(JSON.stringify(values));
    const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) }, this.current.crypto, data);
    return {
      sealed: `${VERSION}:${this.current.id}:${iv.toString("base64")}:${Buffer.from(ct).toString("base64")}`,
      keys: Object.keys(values).sort(),
    };
  }

  /** The values of a stored `secrets` column: sealed, or plain text from before sealing existed. */
  async unseal(stored: unknown, context: string): Promise<Record<string, string>> {
    if (!isSealed(stored)) return (stored ?? {}) as Record<string, string>;
    const [version, id, iv, ct] = stored.sealed.split(":");
    if (version !== VERSION || !id || !iv || !ct) throw new SecretKeyError(`sealed secrets of ${context} are in an unknown format (${version})`);
    let key = this.ring.get(id);
    if (!key) {
      // `runnel secrets rotate-key` may have replaced the key file since this process read it.
      await this.reload();
      key = this.ring.get(id);
    }
    if (!key) {
      throw new SecretKeyError(
        `the secrets of ${context} were sealed with key ${id}, which this control plane does not have (its key is ${this.current.id}, from ${this.origin}); ` +
          `give every control plane on this database the same RUNNEL_SECRET_KEY (RUNNEL_SECRET_KEY_PREVIOUS for the one before a rotation)`,
      );
    }
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: Buffer.from(iv, "base64"), additionalData: new TextEncoder().encode(context) },
        key.crypto,
        Buffer.from(ct, "base64"),
      );
      return JSON.parse(new TextDecoder().decode(plain));
    } catch {
      throw new SecretKeyError(`the sealed secrets of ${context} do not open with key ${id}: they were altered, or copied from another row`);
    }
  }

  /** Whether a stored value is sealed with the current key (else a start re-seals it). */
  isCurrent(stored: unknown): boolean {
    return isSealed(stored) && stored.sealed.split(":")[1] === this.current.id;
  }

  private async reload(): Promise<void> {
    const { current, ring } = await SecretBox.load(this.source);
    this.current = current;
    for (const [id, k] of ring) this.ring.set(id, k);
  }

  /** A box sealing with `key`, opening with this ring too: what `runnel secrets rotate-key` re-seals with. */
  async withCurrentKey(key: string): Promise<SecretBox> {
    const next = await importKey(parseKey(key, "the new key"));
    const ring = new Map(this.ring);
    ring.set(next.id, next);
    return new SecretBox(next, ring, this.source, "the new key");
  }
}

export function isSealed(stored: unknown): stored is SealedSecrets {
  return !!stored && typeof stored === "object" && typeof (stored as SealedSecrets).sealed === "string" && Array.isArray((stored as SealedSecrets).keys);
}
