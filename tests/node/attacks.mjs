// Attacks on a space by an independent client: nostr-tools under Node, written from
// docs/PROTOCOL.md alone, against `spaces host` and `spaces join` processes. Audio is checked at
// the attacked listener (the host's tone, its share of frames, the longest gap).
//
//   1. 50 Sybil keys JOIN announcing 2 Gbit/s and RESERVE the host, never start a link; 20
//      fresh ones more every second while a real listener joins.
//   2. 3 Sybils hold the host's seats and CONFIRM every RESERVE made to them, never answering
//      the offer.
//   3. A member sends 200 SDP offers nobody asked for to a listener: no answer, the listener's
//      file descriptors and memory stay flat, its audio goes on.
//   4. A member forges authority (closes the space, promotes itself, removes the host and the
//      listener), then 500 fresh keys JOIN with 60 KB names claiming 2 Gbit/s: the listener
//      hears on, in place.
//
// Time to first audio under attack is printed for BENCHMARKS.md, never asserted. Exits non-zero
// on a failed check. Env: SPACES_BIN (the `spaces` binary).

import { readFileSync, readdirSync } from 'node:fs';
import { generateSecretKey } from 'nostr-tools/pure';
import {
  Client, KIND, SimplePool, TONE, check, finish, hostLines, joinReport, metrics, sleep, spaces,
} from './client.mjs';

/** `spaces host` with three seats (400 kbit/s up, a phone's), streaming the tone. */
async function phoneHost(seconds, uplink = 400) {
  const host = spaces([
    'host', '--input', `tone:${TONE}`, '--output', 'null', '--uplink-kbps', String(uplink),
    '--seconds', String(seconds),
  ]);
  return { host, space: await hostLines(host) };
}

/** `spaces join` listening for the tone for `seconds`. */
function listener(space, seconds) {
  return spaces([
    'join', `30312:${space.hostKey}:${space.id}`, '--relay', space.relay, '--output', 'null',
    '--expect-tone', String(TONE), '--seconds', String(seconds),
  ]);
}

/** A member of `space`: it JOINs announcing `uplink` kbit/s, over `pool`. */
async function member(space, pool, uplink = 2000000) {
  const me = new Client(space.relay, { id: space.id, host: space.hostKey }, false,
    generateSecretKey(), pool);
  await me.publish(KIND.join, me.base([['d', me.d(me.pk)], ['encryption', 'nip44']]),
    JSON.stringify({ name: 'fast relay', publicKey: me.pk, networkMetrics: metrics(uplink) }));
  return me;
}

/** `count` Sybils that JOIN and RESERVE the host, and never link. */
async function sybils(space, pool, count) {
  const keys = [];
  for (let n = 0; n < count; n += 1) {
    const me = await member(space, pool);
    await me.publish(KIND.reserve,
      me.base([['p', space.hostKey], ['d', me.d(me.pk, space.hostKey)]]),
      me.seal(space.hostKey, { type: 'consumer' }));
    keys.push(me);
  }
  return keys;
}

function heardWell(report, who) {
  console.log(`${who}: ${JSON.stringify(report)}`);
  check(report.first_audio_ms != null, `${who}: the listener hears the host`);
  check(report.tone_pct >= 90, `${who}: the tone in >= 90 % of its frames (${report.tone_pct})`);
}

/** 1. Sybils reserve the host's seats and never link, in waves. */
async function sybilsReserve() {
  const { host, space } = await phoneHost(25);
  const pool = new SimplePool();
  try {
    await sybils(space, pool, 50);
    await sleep(1000);
    const newcomer = listener(space, 12);
    const waves = (async () => {
      for (let wave = 0; wave < 5; wave += 1) {
        await sybils(space, pool, 20);
        await sleep(1000);
      }
    })();
    const report = await joinReport(newcomer);
    await waves;
    heardWell(report, '50 Sybils + 20 a second');
    console.log(`time to audio under a Sybil flood: ${report.first_audio_ms} ms`);
    check(report.parent === space.hostKey, '50 Sybils: the newcomer sits below the host');
  } finally {
    pool.close([space.relay]);
    host.kill();
  }
}

/** 2. Sybils hold the seats and confirm every reservation made to them, never answering. */
async function sybilsConfirm() {
  const { host, space } = await phoneHost(25);
  const pool = new SimplePool();
  let tried = 0;
  try {
    const held = await sybils(space, pool, 3);
    for (const sybil of held) {
      sybil.inbox([KIND.reserve], async (event) => {
        tried += 1;
        await sybil.publish(KIND.confirm,
          sybil.base([['p', event.pubkey], ['d', sybil.d(event.pubkey, sybil.pk)]]),
          sybil.seal(event.pubkey, { type: 'consumer' }));
      });
    }
    await sleep(500);
    const report = await joinReport(listener(space, 12));
    heardWell(report, 'Sybils that confirm and never answer');
    console.log(`time to audio past confirming Sybils: ${report.first_audio_ms} ms`);
    check(tried === 0 && report.upstream_lost === 0,
      `confirming Sybils: their unproven seats were never tried (${tried} reservations to them)`);
  } finally {
    pool.close([space.relay]);
    host.kill();
  }
}

/** The listener's key: the author of the first JOIN that is neither the host's nor ours. */
function listenerKey(space, pool, ours) {
  return new Promise((resolve) => {
    const sub = pool.subscribeMany([space.relay], { kinds: [KIND.join], '#s': [space.id] }, {
      onevent: (event) => {
        if (event.pubkey !== space.hostKey && !ours.has(event.pubkey)) {
          sub.close();
          resolve(event.pubkey);
        }
      },
    });
  });
}

/** A `spaces join` listener that has been hearing the host for a few seconds, and its key. */
async function hearingListener(space, pool) {
  const victim = listener(space, 14);
  const victimKey = await listenerKey(space, pool, new Set());
  await sleep(4000);
  return { victim, victimKey };
}

/** Open descriptors and resident memory (KiB) of process `pid`. */
function footprint(pid) {
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const rss = Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
  return { fds, rss };
}

/** 3. Offers nobody asked for. */
async function unpromptedOffers() {
  const { host, space } = await phoneHost(30, 5000);
  const pool = new SimplePool();
  try {
    const { victim, victimKey } = await hearingListener(space, pool);
    const before = footprint(victim.pid);
    const attacker = await member(space, pool);
    for (let n = 0; n < 200; n += 1) {
      const sdp = `v=0\r\no=- ${n} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n`;
      await attacker.publish(KIND.offer, attacker.base([['p', victimKey]]),
        attacker.seal(victimKey, { sdp }));
    }
    await sleep(3000);
    const after = footprint(victim.pid);
    const report = await joinReport(victim);
    heardWell(report, '200 unprompted offers');
    const growth = { fds: after.fds - before.fds, rss_kib: after.rss - before.rss };
    console.log(`200 unprompted offers: footprint before ${JSON.stringify(before)}, growth ${JSON.stringify(growth)}`);
    check(report.rejected?.['unsolicited offer'] === 200 && report.children === 0,
      `offers: all 200 counted as unsolicited, no child made (${JSON.stringify(report.rejected)})`);
    check(growth.fds <= 4, `offers: <= 4 more descriptors (${growth.fds})`);
    check(growth.rss_kib <= 8192, `offers: <= 8 MiB more memory (${growth.rss_kib} KiB)`);
    check(report.gap_ms_max <= 300, `offers: no gap in the audio (longest ${report.gap_ms_max} ms)`);
  } finally {
    pool.close([space.relay]);
    host.kill();
  }
}

/** 4. Forged authority and a flood of bulky JOINs. */
async function forgeries() {
  const { host, space } = await phoneHost(30, 5000);
  const pool = new SimplePool();
  try {
    const { victim, victimKey } = await hearingListener(space, pool);
    const forger = await member(space, pool);
    const roleChange = (kind, target) => forger.publish(kind,
      forger.base([['d', forger.d(target)], ['p', target]]), '');
    await forger.publish(KIND.close, forger.base([]), '');
    await roleChange(KIND.promoteCohost, forger.pk);
    await roleChange(KIND.remove, space.hostKey);
    await roleChange(KIND.remove, victimKey);
    const name = 'x'.repeat(60000);
    for (let n = 0; n < 500; n += 1) {
      const flood = new Client(space.relay, { id: space.id, host: space.hostKey }, false,
        generateSecretKey(), pool);
      await flood.publish(KIND.join, flood.base([['d', flood.d(flood.pk)]]),
        JSON.stringify({ name, publicKey: flood.pk, networkMetrics: metrics(2000000) }))
        .catch(() => {}); // a relay may refuse them: that is its right
    }
    const report = await joinReport(victim);
    heardWell(report, 'forged authority and a JOIN flood');
    check(report.gap_ms_max <= 300 && report.parent === space.hostKey,
      `forgeries: the space stayed open and the listener in place (longest gap ${report.gap_ms_max} ms)`);
  } finally {
    pool.close([space.relay]);
    host.kill();
  }
}

await sybilsReserve();
await sybilsConfirm();
await unpromptedOffers();
await forgeries();
finish('attacks by an independent client');
