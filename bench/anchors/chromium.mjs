// The Chromium anchor for link set-up (bench/anchors/run.sh): the browser's own WebRTC
// (libwebrtc) in headless Debian Chromium, the same shape as rtc_hops and the Pion anchor:
// two peer connections in one page, an audio track, timed from the offer to both ends
// connected, each pair closed before the next. Candidates are trickled from one connection
// to the other as they come (the browser's fastest way: waiting for its gathering to complete
// costs it ~100 ms more here, for IPv6 and TCP candidates). Set-up only: a
// page cannot forward RTP unchanged, so the forwarding shapes have no Chromium column.
// Env: CHROMIUM (default /usr/bin/chromium), SETUPS (default 300).
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/node/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const SETUPS = Number(process.env.SETUPS ?? 300);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--disable-component-update', '--disable-sync', '--no-first-run',
    '--autoplay-policy=no-user-gesture-required',
    // Host candidates as addresses, not mDNS names: nothing multicast on the network, and
    // the same candidates as the other two stacks.
    '--disable-features=WebRtcHideLocalIpsWithMdns',
  ],
});
/** Times `n` set-ups in a fresh page (a page holds at most a few hundred peer connections,
 *  closed ones included, until they are collected). */
async function inPage(n) {
  const page = await browser.newPage();
  const times = await page.evaluate(async (n) => {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const out = audio.createMediaStreamDestination();
    tone.connect(out);
    tone.start();
    const [track] = out.stream.getAudioTracks();
    const when = (pc, event, done) => new Promise((resolve) => {
      if (done()) resolve();
      pc.addEventListener(event, () => done() && resolve());
    });
    const connected = (pc) => when(pc, 'connectionstatechange', () => pc.connectionState === 'connected');
    const result = [];
    for (let i = 0; i < n; i += 1) {
      const up = new RTCPeerConnection();
      const down = new RTCPeerConnection();
      up.addTrack(track, out.stream);
      up.onicecandidate = (e) => e.candidate && down.addIceCandidate(e.candidate).catch(() => {});
      down.onicecandidate = (e) => e.candidate && up.addIceCandidate(e.candidate).catch(() => {});
      const start = performance.now();
      const both = Promise.all([connected(up), connected(down)]);
      await up.setLocalDescription(await up.createOffer());
      await down.setRemoteDescription(up.localDescription);
      await down.setLocalDescription(await down.createAnswer());
      await up.setRemoteDescription(down.localDescription);
      await both;
      result.push(performance.now() - start);
      up.close();
      down.close();
    }
    return result;
  }, n);
  await page.close();
  return times;
}

const BATCH = 50;
try {
  const times = [];
  for (let done = 0; done < SETUPS; done += BATCH) {
    times.push(...await inPage(Math.min(BATCH, SETUPS - done)));
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.round(q * (times.length - 1)))];
  console.log(
    `link set-up (loopback, both ends connected): p50 ${at(0.5).toFixed(1)} ms, `
      + `p99 ${at(0.99).toFixed(1)} ms, max ${times.at(-1).toFixed(1)} ms, `
      + `over 1 s: ${times.filter((t) => t > 1000).length}, n=${times.length}`,
  );
} finally {
  await browser.close();
}
