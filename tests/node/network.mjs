// Real networks in namespaces (bed.mjs): every peer, the relay and the TURN server in a site of
// its own behind a router, with what real access networks have: a rate limit (tc `tbf`),
// delay, jitter, loss and reordering (NFQUEUE and `impair`, as this kernel has no `netem`),
// symmetric NAT, coverage lost and found, a frozen process. Each scenario checks the tone in
// every listener's recording. Needs root (CI runs as root).
//
//   1. Lossy links: 40 ± 15 ms, 2 % loss, 3 % reordering between every two sites; a host and
//      eight listeners, each behind its own link.
//   2. A host whose real uplink is 200 kbit/s (three streams) announces 5,000 on Wi-Fi; ten
//      listeners join, 100 ms apart. The host learns its uplink from their receiver reports,
//      hands the children it cannot feed to the tree, and every listener hears the tone.
//   3. Symmetric NAT: the host and four listeners each behind their own port-randomising NAT,
//      coturn reachable; the host and two listeners are relay-only, and no UDP of theirs goes
//      anywhere but the TURN server.
//   4. A listener loses its network for 5 s: audio is back within 2 s of the restore.
//   5. A relaying listener freezes for 3 s (SIGSTOP): its children's warm backups cover it.
//
// Exits non-zero on a failed check. Env: SPACES_BIN (`spaces`), IMPAIR_BIN (`impair`),
// NET_LOGS (a directory for the listeners' stderr; with RUST_LOG, their logs).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bed } from './bed.mjs';
import {
  SPACES, TONE, check, finish, hostLines, joinReport, sleep,
} from './client.mjs';

const RELAY_PORT = 7790;
const TURN_PORT = 3478;
const TURN_USER = 'spaces';
const TURN_PASSWORD = 'spaces-secret';

/** A bed with a relay in its own site; returns the relay's URL. */
async function withRelay(bed) {
  const site = bed.site('sp-relay', 1);
  const relay = bed.spawn(site, SPACES, ['relay', '--listen', `${site.addr}:${RELAY_PORT}`]);
  for await (const chunk of relay.stdout) {
    if (String(chunk).includes('relay ')) break;
  }
  return `ws://${site.addr}:${RELAY_PORT}`;
}

/** The host's site and `n` listeners' sites (each behind its own NAT with `nat`). */
function peerSites(bed, n, { nat = false } = {}) {
  return {
    hostSite: bed.site('sp-host', 10, { nat }),
    sites: Array.from({ length: n }, (_, k) => bed.site(`sp-l${k}`, 20 + k, { nat })),
  };
}

/** Runs `spaces <args>` in `site`, keeping its stderr (status lines, logs) in `status.text`. */
function watched(bed, site, args) {
  const child = bed.spawn(site, SPACES, args, { stderr: 'pipe' });
  const status = { text: '' };
  child.stderr.on('data', (chunk) => { status.text += chunk; });
  return { child, status };
}

/** Starts `spaces host` in `site` playing the tone; returns its space and its stderr so far. */
async function host(bed, site, relay, seconds, extra = []) {
  const h = watched(bed, site, [
    'host', '--relay', relay, '--input', `tone:${TONE}`, '--output', 'null', '--seconds',
    String(seconds), ...extra,
  ]);
  const space = await hostLines(h.child);
  return { ...h, address: `30312:${space.hostKey}:${space.id}` };
}

/** Starts a listener in `site` that listens `ms` for the tone. */
function listener(bed, site, space, relay, ms, extra = []) {
  const l = watched(bed, site, [
    'join', space, '--relay', relay, '--output', 'null', '--expect-tone', String(TONE),
    '--seconds', String(ms / 1000), ...extra,
  ]);
  return { ...l, report: joinReport(l.child) };
}

/** The children count in the last status line (`children N/capacity`) of `status`, and the
 *  line itself. */
function lastStatus(status) {
  const line = (status.text.match(/^parent .*$/gm) ?? []).at(-1) ?? '';
  return { line, children: Number(line.match(/children (\d+)\//)?.[1] ?? NaN) };
}

/** How many of `reports` heard the tone in at least `pct` % of the frames due. */
function hearing(reports, listenMs, pct = 90) {
  return reports.filter((r) => wallPct(r, listenMs) >= pct).length;
}

/** Runs `body(bed, relayUrl)` in a fresh bed with a relay, tearing it down whatever happens. */
async function inBed(body) {
  const bed = new Bed();
  try {
    await body(bed, await withRelay(bed));
  } finally {
    await bed.teardown();
  }
}

/** Frames with the tone against the wall clock after first audio, in percent: concealed and
 *  missing frames count as misses (the share of played frames alone would hide them). */
function wallPct(report, listenMs) {
  const due = report.first_audio_ms == null ? 0 : (listenMs - report.first_audio_ms) / 20;
  return due > 0 ? Math.min(100, (report.frames * report.tone_pct) / 100 / due * 100) : 0;
}

/** With NET_LOGS=<dir>, keeps each listener's stderr (status lines, and logs per RUST_LOG). */
function keepLogs(scenario, host, listeners) {
  const dir = process.env.NET_LOGS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${scenario}-host.log`), host.status.text);
  listeners.forEach((l, n) => writeFileSync(join(dir, `${scenario}-${n}.log`), l.status.text));
}

function show(scenario, reports, listenMs) {
  reports.forEach((r, n) => console.log(`${scenario}: listener ${n}: ${JSON.stringify({
    first_audio_ms: r.first_audio_ms, wall_pct: Math.round(wallPct(r, listenMs) * 10) / 10,
    frames: r.frames, tone_pct: r.tone_pct, gap_ms_max: r.gap_ms_max, parent: r.parent?.slice(0, 8),
    reservations: r.reservations, upstream_lost: r.upstream_lost, jitter: r.jitter,
    children: r.children, takeovers: r.standby_takeovers,
  })}`));
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function lossyLinks() {
  const listenMs = 30000;
  await inBed(async (bed, relay) => {
    const { hostSite, sites } = peerSites(bed, 8);
    await bed.impair({ delayMs: 40, jitterMs: 15, lossPct: 2, reorderPct: 3 });
    const h = await host(bed, hostSite, relay, listenMs / 1000 + 15);
    const listeners = [];
    for (const site of sites) {
      listeners.push(listener(bed, site, h.address, relay, listenMs));
      await sleep(300);
    }
    const reports = await Promise.all(listeners.map((l) => l.report));
    keepLogs('lossy', h, listeners);
    show('lossy links', reports, listenMs);
    const firsts = reports.map((r) => r.first_audio_ms ?? Infinity);
    console.log(`lossy links: first audio median ${median(firsts)} ms (min ${Math.min(...firsts)}, max ${Math.max(...firsts)})`);
    const heard = hearing(reports, listenMs);
    check(heard === 8, `lossy links: ${heard} of 8 listeners hear >= 90 % of the frames due`);
    // First audio counts from a session whose relay connection is up (a listener's report).
    // Our dialect's floor on these links is seven 40 ms legs: the RESERVE to the host through
    // the relay (two), the host's first check, the nomination, the ClientHello, the DTLS
    // server's flight, the Finished with the audio behind it; then the jitter buffer's first
    // hold. Medians of ~0.42 s are measured (BENCHMARKS.md); the check only catches a
    // handshake that lost its shortcuts (2.1 s before them), with room for a loaded machine.
    check(median(firsts) <= 1500, `lossy links: first audio median ${median(firsts)} ms <= 1500 ms`);
  });
}

async function overAnnouncingHost() {
  const listenMs = 45000;
  await inBed(async (bed, relay) => {
    const hostSite = bed.site('sp-host', 10);
    const lis = bed.site('sp-lis', 11);
    // The host's real uplink: 300 kbit/s (five streams) with a queue of 200 ms, and 60 ms
    // on the way out, as a phone on cellular; it announces 5,000 kbit/s, as a platform
    // estimate gone wrong would.
    hostSite.limitUplink(300);
    await bed.impair({ delayMs: 60, from: hostSite });
    const h = await host(bed, hostSite, relay, 75, ['--uplink-kbps', '5000', '--connection', 'wifi']);
    const listeners = [];
    for (let n = 0; n < 10; n += 1) {
      listeners.push(listener(bed, lis, h.address, relay, listenMs, ['--uplink-kbps', '5000']));
      await sleep(100);
    }
    const reports = await Promise.all(listeners.map((l) => l.report));
    show('over-announcing host', reports, listenMs);
    keepLogs('over', h, listeners);
    const last = lastStatus(h.status);
    const cut = / \(cut \d+x\)/.test(last.line);
    console.log(`over-announcing host: status, last: ${last.line || '(none)'}; capacity cut from receiver reports: ${cut}`);
    // The saturated uplink also slows the host's own signaling, so newcomers time out on it
    // and go elsewhere: the tree may settle before any cut (about one run in four). Either
    // way the host must end feeding no more than its uplink carries.
    const fed = last.children;
    check(fed <= 5, `over-announcing host: it ends feeding ${fed} children, what 300 kbit/s carries`);
    // The first children are fed through the saturation before the cut: 93-95 % (BENCHMARKS.md).
    const heard = hearing(reports, listenMs);
    check(heard === 10,
      `over-announcing host: ${heard} of 10 listeners hear the tone in >= 90 % of the frames due after their first audio`);
  });
}

async function symmetricNat() {
  const listenMs = 25000;
  await inBed(async (bed, relay) => {
    const turnSite = bed.site('sp-turn', 2);
    const turn = bed.spawn(turnSite, 'turnserver', [
      '-n', `--listening-ip=${turnSite.addr}`, `--relay-ip=${turnSite.addr}`,
      `--listening-port=${TURN_PORT}`, '--min-port=49160', '--max-port=49660', '--lt-cred-mech',
      `--user=${TURN_USER}:${TURN_PASSWORD}`, '--realm=spaces.test', '--fingerprint', '--no-tls',
      '--no-dtls', '--no-cli', '--no-multicast-peers', '--log-file=stdout', '--simple-log',
    ], { stderr: 'ignore' }); // it complains of the protocols this kernel lacks (SCTP)
    turn.stdout.resume();
    await sleep(500);
    const turnUrl = `turn://${TURN_USER}:${TURN_PASSWORD}@${turnSite.addr}:${TURN_PORT}`;
    const { hostSite, sites } = peerSites(bed, 4, { nat: true });
    // The host and the first two listeners are relay-only: count their UDP to anyone else.
    const relayOnly = [hostSite, sites[0], sites[1]];
    for (const site of relayOnly) site.countUdpOutsideOf(turnSite.addr);
    const ice = ['--ice-server', turnUrl];
    const h = await host(bed, hostSite, relay, listenMs / 1000 + 15, [...ice, '--relay-only']);
    const listeners = sites.map((site, n) => listener(bed, site, h.address, relay, listenMs,
      n < 2 ? [...ice, '--relay-only'] : ice));
    const reports = await Promise.all(listeners.map((l) => l.report));
    show('symmetric NAT', reports, listenMs);
    const heard = hearing(reports, listenMs);
    check(heard === 4, `symmetric NAT: ${heard} of 4 NATed listeners hear >= 90 % through TURN`);
    const leaked = relayOnly.map((site) => site.udpOutsideOf());
    console.log(`symmetric NAT: UDP packets of relay-only sites to anything but TURN: ${leaked.join(', ')}`);
    check(leaked.every((n) => n === 0),
      'symmetric NAT: relay-only peers send UDP to the TURN server only');
  });
}

async function networkCut() {
  const listenMs = 25000;
  await inBed(async (bed, relay) => {
    const { hostSite, sites } = peerSites(bed, 3);
    const h = await host(bed, hostSite, relay, listenMs / 1000 + 10);
    const listeners = sites.map((site) => listener(bed, site, h.address, relay, listenMs));
    await sleep(8000);
    console.log(`network cut: cut at ${new Date().toISOString()}`);
    sites[0].cut();
    await sleep(5000);
    console.log(`network cut: restored at ${new Date().toISOString()}`);
    sites[0].restore();
    const reports = await Promise.all(listeners.map((l) => l.report));
    keepLogs('cut', h, listeners);
    show('network cut', reports, listenMs);
    // The longest gap of the cut listener: the 5 s cut, plus what it takes to come back.
    const gap = reports[0].gap_ms_max;
    check(gap != null && gap <= 7000,
      `network cut: the cut listener's audio is back ${gap - 5000} ms after the restore (<= 2000)`);
    const others = hearing(reports.slice(1), listenMs);
    check(others === 2, `network cut: ${others} of 2 other listeners hear >= 90 %`);
  });
}

async function frozenRelay() {
  const listenMs = 25000;
  await inBed(async (bed, relay) => {
    const { hostSite, sites } = peerSites(bed, 5);
    // Two seats at the host (240 kbit/s on Wi-Fi): the other three listeners hang below them.
    const hostRun = await host(bed, hostSite, relay, listenMs / 1000 + 10,
      ['--uplink-kbps', '240']);
    const { address } = hostRun;
    // Everyone stops at the same moment: a listener that stayed on after its parent and
    // backup left would count the moves their leaving costs as gaps of the freeze.
    const end = Date.now() + listenMs;
    const listeners = [];
    for (const site of sites) {
      listeners.push(listener(bed, site, address, relay, end - Date.now()));
      await sleep(400);
    }
    // Status lines come every 5 s: wait for two, then freeze a listener that has children.
    await sleep(10000);
    const relaying = listeners.findIndex((l) => lastStatus(l.status).children > 0);
    check(relaying >= 0, 'frozen relay: some listener relays to others');
    if (relaying < 0) return;
    const frozen = listeners[relaying].child;
    frozen.kill('SIGSTOP');
    await sleep(3000);
    frozen.kill('SIGCONT');
    const reports = await Promise.all(listeners.map((l) => l.report));
    keepLogs('frozen', hostRun, listeners);
    show('frozen relay', reports, listenMs);
    const gaps = reports.filter((_, n) => n !== relaying).map((r) => r.gap_ms_max ?? Infinity);
    console.log(`frozen relay: listener ${relaying} frozen 3 s; longest gaps of the others: ${gaps.join(', ')} ms`);
    check(gaps.every((g) => g < 300), 'frozen relay: every other listener\'s longest gap < 300 ms');
  });
}

if (process.getuid?.() !== 0) {
  console.error('network suite: needs root (network namespaces)');
  process.exit(1);
}
const only = process.argv[2];
const scenarios = { lossyLinks, overAnnouncingHost, symmetricNat, networkCut, frozenRelay };
for (const [name, scenario] of Object.entries(scenarios)) {
  if (!only || only === name) await scenario();
}
finish('real networks');
