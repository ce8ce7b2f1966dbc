// What both Node suites share: the `spaces` binary and the independent relay, the protocol's
// kinds, a nostr-tools client written from docs/PROTOCOL.md alone, and the checks' ledger.

import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import * as nip44 from 'nostr-tools/nip44';
import { SimplePool, useWebSocketImplementation } from 'nostr-tools/pool';

useWebSocketImplementation(WebSocket);

export { SimplePool };

export const here = dirname(fileURLToPath(import.meta.url));
export const SPACES = process.env.SPACES_BIN ?? join(here, '../../target/debug/spaces');
export const RELAY_SCRIPT = process.env.RELAY_SCRIPT ?? join(here, '../relays/nostr-relay.sh');
export const TONE = 440;

export const KIND = {
  create: 1000, join: 31101, reserve: 31103, confirm: 31104, drop: 31105,
  offer: 21102, answer: 21103, ice: 21104, speech: 21105,
  close: 1001, remove: 31106, promoteCohost: 31108,
};

const failures = [];

/** Records one check; the suite fails at `finish` if any did. */
export function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

/** Exits: non-zero when a check failed. */
export function finish(suite) {
  if (failures.length) {
    console.error(`${failures.length} ${suite} check(s) failed`);
    process.exit(1);
  }
  console.log(`${suite}: all checks passed`);
  process.exit(0);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs `spaces` with `args`, its stdout piped to us. */
export function spaces(args) {
  return spawn(SPACES, args, { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** The JSON line `spaces join --expect-tone` prints last, once it is done. */
export async function joinReport(child) {
  let out = '';
  for await (const chunk of child.stdout) out += chunk;
  return JSON.parse(out.trim().split('\n').pop() || '{}');
}

/** One identity speaking the protocol over a relay; `draft` speaks it as the draft's text
 *  does (no NIP-44, no `s` on CREATE, SDP as an object). */
export class Client {
  constructor(relay, space, draft = false, sk = generateSecretKey(), pool = new SimplePool()) {
    this.sk = sk;
    this.pk = getPublicKey(this.sk);
    this.relay = relay;
    this.space = space; // { id, host }
    this.draft = draft;
    // Many identities may share one connection (an attacker's Sybils do).
    this.pool = pool;
  }

  d(...keys) {
    return [this.space.id, this.space.host, ...keys].join('||');
  }

  base(extra) {
    return [['s', this.space.id], ['h', this.space.host], ['webrtc', 'spaces'], ...extra];
  }

  seal(to, value) {
    if (this.draft) return JSON.stringify(value);
    return nip44.encrypt(JSON.stringify(value), nip44.getConversationKey(this.sk, to));
  }

  sdp(type, sdp) {
    return this.draft ? { sdp: { type, sdp } } : { sdp };
  }

  open(event) {
    // The draft's client only `JSON.parse`s: NIP-44 is unreadable to it.
    if (this.draft) return JSON.parse(event.content);
    const text = event.content.trim().startsWith('{')
      ? event.content
      : nip44.decrypt(event.content, nip44.getConversationKey(this.sk, event.pubkey));
    return JSON.parse(text);
  }

  async publish(kind, tags, content) {
    const event = finalizeEvent(
      { kind, tags, content, created_at: Math.floor(Date.now() / 1000) },
      this.sk,
    );
    await Promise.any(this.pool.publish([this.relay], event));
    return event;
  }

  /** Calls `on(event)` for private payloads addressed to us. */
  inbox(kinds, on) {
    this.pool.subscribeMany([this.relay], { kinds, '#p': [this.pk] }, {
      onevent: (event) => Promise.resolve(on(event)).catch((e) => console.error(e)),
    });
  }

  close() {
    this.pool.close([this.relay]);
  }
}

export const metrics = (up) => ({
  downloadSpeedKbps: 20000, uploadSpeedKbps: up, maxAudioOutputs: 0, networkConnectionType: 'wifi',
});

/** Reads `space 30312:<host>:<id>` and `relay <url>` from a `spaces host`. */
export async function hostLines(child) {
  let buffer = '';
  for await (const chunk of child.stdout) {
    buffer += chunk;
    const space = buffer.match(/^space 30312:([0-9a-f]{64}):(\S+)$/m);
    const relay = buffer.match(/^relay (\S+)$/m);
    if (space && relay) return { hostKey: space[1], id: space[2], relay: relay[1] };
  }
  throw new Error('spaces host printed no address');
}
