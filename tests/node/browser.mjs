// Browser interop: Chromium's libwebrtc as a peer of a space, signaling with nostr-tools, both
// written from docs/PROTOCOL.md alone, against the `spaces` CLI.
//
//   1. The browser listens to `spaces host`: it hears the tone.
//   2. `spaces join` listens to a browser host: it hears the tone, which the browser sends
//      without a CSRC (browsers cannot set one).
//   3. A browser listener raises its hand, `spaces host --promote-hands` promotes it, and a
//      `spaces join` listener hears its voice (sent without CSRC) through the host.
//   4. and 5. The same as 1 and 2 with a draft-literal client, written from the draft's text: private
//      payloads in clear JSON, no JOIN, a RESERVE without `type`, a CREATE without `s`, SDP as
//      `{"sdp": {type, sdp}}`; the `spaces` side runs with --draft-compat.
//
// Audio is checked at the far end (the tone's frequency and share of frames). Exits non-zero
// on a failed check. Env: SPACES_BIN (the `spaces` binary), RELAY_SCRIPT (starts the
// independent relay), CHROMIUM (default /usr/bin/chromium).

import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import {
  Client, KIND, RELAY_SCRIPT, TONE, check, finish, freePort, here, hostLines, joinReport,
  metrics, sleep, spaces,
} from './client.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SPEAKER_TONE = 660;

async function newPage(browser) {
  const page = await browser.newPage();
  await page.setContent(readFileSync(join(here, 'peer.html'), 'utf8'));
  return page;
}

const sdpText = (sdp) => (typeof sdp === 'string' ? sdp : sdp.sdp);

/** Joins `spaces host` at `relay` as a browser listener (sending `speakHz` on its link when
 *  given); returns the client, its page and when it started. */
async function joinAsBrowser(browser, { hostKey, id, relay }, draft, speakHz) {
  const page = await newPage(browser);
  const me = new Client(relay, { id, host: hostKey }, draft);
  const asked = Date.now();
  me.inbox([KIND.confirm, KIND.answer, KIND.ice], async (event) => {
    if (event.pubkey !== hostKey) return;
    if (event.kind === KIND.confirm) {
      // The requester offers (PROTOCOL.md): once confirmed.
      const sdp = await page.evaluate((hz) => window.listen(hz), speakHz ?? null);
      await me.publish(KIND.offer, me.base([['p', hostKey]]), me.seal(hostKey, me.sdp('offer', sdp)));
    } else if (event.kind === KIND.answer) {
      const { sdp } = me.open(event);
      await page.evaluate((s) => window.accept(s), sdpText(sdp));
    } else if (event.kind === KIND.ice) {
      const { ice } = me.open(event);
      await page.evaluate((c) => window.addIce(c), ice);
    }
  });
  if (!draft) {
    await me.publish(KIND.join, me.base([['d', me.d(me.pk)]]), JSON.stringify({
      name: 'browser', publicKey: me.pk, networkMetrics: metrics(0),
    }));
  }
  // The draft client reserves without a JOIN and without `type`.
  await me.publish(
    KIND.reserve,
    me.base([['p', hostKey], ['d', me.d(me.pk, hostKey)]]),
    me.seal(hostKey, draft ? {} : { type: 'consumer' }),
  );
  return { me, page, asked };
}

/** 1. (4.) The browser listens to `spaces host`. */
async function browserListens(browser, draft) {
  const who = draft ? 'draft-literal browser listener' : 'browser listener';
  const args = ['host', '--input', `tone:${TONE}`, '--output', 'null', '--seconds', '30'];
  const host = spaces(draft ? [...args, '--draft-compat'] : args);
  try {
    const { me, page, asked } = await joinAsBrowser(browser, await hostLines(host), draft);
    const first = await page.evaluate((hz) => window.firstTone(hz, 10000), TONE);
    // From the JOIN to the first moment the tone is heard, on this process's clock.
    const firstAudio = first === null ? null : Date.now() - asked;
    const share = await page.evaluate((hz) => window.toneShare(hz, 3000), TONE);
    const setup = await page.evaluate(() => window.setupMs());
    console.log(`${who}: first audio ${firstAudio ?? 'never'} ms after its first event, link set-up ${setup === null ? '-' : Math.round(setup)} ms (browser offers), tone in ${(share * 100).toFixed(1)} % of frames`);
    check(first !== null, `the ${who} hears the spaces host`);
    check(share >= 0.9, `the ${who} hears the tone in >= 90 % of frames (${(share * 100).toFixed(1)} %)`);
    me.close();
    await page.close();
  } finally {
    host.kill();
  }
}

/** 3. A browser listener is promoted to speaker; a `spaces` listener hears its voice. */
async function browserSpeaks(browser) {
  const host = spaces([
    'host', '--input', `tone:${TONE}`, '--output', 'null', '--seconds', '40', '--promote-hands',
  ]);
  let listener;
  try {
    const space = await hostLines(host);
    listener = spaces([
      'join', `30312:${space.hostKey}:${space.id}`, '--relay', space.relay, '--output', 'null',
      '--expect-tone', String(TONE), '--seconds', '16',
    ]);
    await sleep(1000);
    const { me, page } = await joinAsBrowser(browser, space, false, SPEAKER_TONE);
    const heard = await page.evaluate((hz) => window.firstTone(hz, 10000), TONE);
    check(heard !== null, 'the browser speaker-to-be hears the host first');
    // REQUEST_SPEECH: a raised hand; the host promotes it, its voice goes up its link.
    await me.publish(
      KIND.speech,
      me.base([['p', me.pk], ['d', me.d(me.pk)], ['speech', 'request']]),
      '',
    );
    const report = await joinReport(listener);
    const voice = (report.voices ?? []).find(
      (v) => v.frequency_hz && Math.abs(v.frequency_hz - SPEAKER_TONE) <= 0.03 * SPEAKER_TONE);
    console.log(`spaces listener of a promoted browser speaker: voices ${JSON.stringify(report.voices)}`);
    check(voice !== undefined && voice.frames >= 100,
      `the spaces listener hears the browser speaker at ${SPEAKER_TONE} Hz for >= 2 s (${voice?.frames ?? 0} frames)`);
    check(report.tone_pct >= 90, `and still the host's tone in >= 90 % of frames (${report.tone_pct})`);
    me.close();
    await page.close();
  } finally {
    listener?.kill();
    host.kill();
  }
}

/** 2. (5.) `spaces join` listens to a browser host, over the independent relay. */
async function browserHosts(browser, draft) {
  const who = draft ? 'draft-literal browser host' : 'browser host';
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'spaces-browser-relay-'));
  execFileSync(RELAY_SCRIPT, ['install'], { stdio: 'inherit' });
  execFileSync(RELAY_SCRIPT, ['start', String(port), dir], { stdio: 'inherit' });
  const relay = `ws://127.0.0.1:${port}`;
  let listener;
  try {
    const page = await newPage(browser);
    const sk = generateSecretKey();
    const hostKey = getPublicKey(sk);
    const id = `browser-${Date.now()}`;
    const me = new Client(relay, { id, host: hostKey }, draft, sk);
    // The draft's CREATE has its id in the content only: no `s`. In our dialect the host
    // says it reads NIP-44, so our listener puts its offer in the RESERVE; this host reads
    // past it and confirms without an answer, and the listener offers again in an OFFER.
    const createTags = draft
      ? [['h', hostKey], ['webrtc', 'spaces']]
      : me.base([['t', 'nostr-spaces'], ['encryption', 'nip44']]);
    await me.publish(KIND.create, createTags, JSON.stringify({
      id, name: 'Browser host', host: { publicKey: hostKey, networkMetrics: metrics(5000) },
    }));
    me.inbox([KIND.reserve, KIND.offer, KIND.ice], async (event) => {
      const peer = event.pubkey;
      if (event.kind === KIND.reserve) {
        await me.publish(
          KIND.confirm,
          me.base([['p', peer], ['d', me.d(peer, hostKey)]]),
          me.seal(peer, { type: 'consumer' }),
        );
      } else if (event.kind === KIND.offer) {
        const { sdp } = me.open(event);
        const answer = await page.evaluate(([s, hz]) => window.host(s, hz), [sdpText(sdp), TONE]);
        await me.publish(KIND.answer, me.base([['p', peer]]), me.seal(peer, me.sdp('answer', answer)));
      } else if (event.kind === KIND.ice) {
        const { ice } = me.open(event);
        await page.evaluate((c) => window.addIce(c), ice);
      }
    });
    const args = [
      'join', `30312:${hostKey}:${id}`, '--relay', relay, '--output', 'null',
      '--expect-tone', String(TONE), '--seconds', '12',
    ];
    listener = spaces(draft ? [...args, '--draft-compat'] : args);
    const report = await joinReport(listener);
    const setup = await page.evaluate(() => window.setupMs());
    console.log(`spaces listener of a ${who}: link set-up ${setup === null ? '-' : Math.round(setup)} ms (spaces offers), ${JSON.stringify(report)}`);
    check(report.first_audio_ms != null, `the spaces listener hears the ${who}`);
    check(report.tone_pct >= 90, `it hears the tone in >= 90 % of frames (${report.tone_pct})`);
    me.close();
    await page.close();
  } finally {
    listener?.kill();
    execFileSync(RELAY_SCRIPT, ['stop', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--disable-component-update', '--disable-sync', '--no-first-run',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
try {
  await browserListens(browser, false);
  await browserHosts(browser, false);
  await browserSpeaks(browser);
  await browserListens(browser, true);
  await browserHosts(browser, true);
} finally {
  await browser.close();
}
finish('browser interop');
