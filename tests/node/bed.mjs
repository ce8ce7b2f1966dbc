// A network test bed in namespaces: a router namespace and, behind it, one namespace per site
// (a peer, the relay, the TURN server), each on its own subnet, so that every packet between
// two sites is routed, and can be delayed, dropped, reordered or cut in the router. A site may
// sit behind its own port-randomising (symmetric) NAT. Every address is inside the namespaces
// the bed creates; nothing leaves the machine. Needs root.

import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { here, sleep } from './client.mjs';

export const IMPAIR = process.env.IMPAIR_BIN ?? join(here, '../../target/debug/impair');

const ROUTER = 'sp-rt';

function run(command, args) {
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

function quietly(command, args) {
  try {
    return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  } catch {
    return ''; // not there
  }
}

const ip = (...args) => run('ip', args);
const inNs = (ns, command, ...args) => run('ip', ['netns', 'exec', ns, command, ...args]);

/** One site behind the router: `ns` runs the programs, `addr` is its public address. */
export class Site {
  constructor(ns, index) {
    this.ns = ns;
    this.addr = `10.77.${index}.2`;
    // The router's side of the site's uplink.
    this.port = `${ns}-r`;
    // The device's own interface, where its uplink's rate limit goes.
    this.dev = `${ns}-d`;
    // A NATed site's NAT namespace, and the NAT's interface toward the device.
    this.natNs = `${ns}-n`;
    this.natInside = `${ns}-i`;
  }

  /** Limits the site's uplink to `kbit` kbit/s with a 200 ms queue (tc tbf). */
  limitUplink(kbit) {
    run('tc', ['-n', this.ns, 'qdisc', 'add', 'dev', this.dev, 'root', 'tbf',
      'rate', `${kbit}kbit`, 'burst', '3000', 'latency', '200ms']);
  }

  /** Cuts the site off (as when a phone loses coverage): the router drops its packets. */
  cut() {
    this.routerDrop('-I');
  }

  /** Restores the site's network after `cut`. */
  restore() {
    this.routerDrop('-D');
  }

  /** Inserts (`-I`) or deletes (`-D`) the router's rules dropping this site's traffic. */
  routerDrop(action) {
    for (const dir of ['-i', '-o']) {
      inNs(ROUTER, 'iptables', action, 'FORWARD', dir, this.port, '-j', 'DROP');
    }
  }

  /** Counts, in this NATed site's NAT, the UDP leaving for anything but `addr` (read it with
   *  `udpOutsideOf`). */
  countUdpOutsideOf(addr) {
    // Counted only: ACCEPT is what the chain does anyway.
    inNs(this.natNs, 'iptables', '-A', 'FORWARD', '-i', this.natInside, '-p', 'udp',
      '!', '-d', `${addr}/32`, '-j', 'ACCEPT');
  }

  /** UDP packets counted since `countUdpOutsideOf`. */
  udpOutsideOf() {
    const out = quietly('ip', ['netns', 'exec', this.natNs, 'iptables', '-L', 'FORWARD', '-v', '-x', '-n']);
    // `-n` prints the protocol as a number (17) on some iptables versions, `udp` on others.
    const line = out.split('\n').find((l) => /\s!\d/.test(l));
    return Number(line?.trim().split(/\s+/)[0] ?? NaN);
  }
}

/** The bed: create it, add sites, start programs, tear it down. */
export class Bed {
  constructor() {
    this.children = [];
    Bed.teardownAll();
    ip('netns', 'add', ROUTER);
    ip('-n', ROUTER, 'link', 'set', 'lo', 'up');
    inNs(ROUTER, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  }

  /** A site on subnet 10.77.`index`.0/24; with `nat`, the device is at 192.168.`index`.2
   *  behind a NAT namespace that maps each flow to a random port. */
  site(name, index, { nat = false } = {}) {
    const site = new Site(name, index);
    // The uplink: the router's port and, on the far side, the site (or its NAT).
    const edge = nat ? site.natNs : name;
    const edgeDev = nat ? `${name}-o` : site.dev;
    ip('netns', 'add', name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    if (nat) {
      ip('netns', 'add', edge);
      ip('-n', edge, 'link', 'set', 'lo', 'up');
    }
    ip('link', 'add', site.port, 'netns', ROUTER, 'type', 'veth', 'peer', 'name', edgeDev, 'netns', edge);
    ip('-n', ROUTER, 'addr', 'add', `10.77.${index}.1/24`, 'dev', site.port);
    ip('-n', ROUTER, 'link', 'set', site.port, 'up');
    ip('-n', edge, 'addr', 'add', `${site.addr}/24`, 'dev', edgeDev);
    ip('-n', edge, 'link', 'set', edgeDev, 'up');
    ip('-n', edge, 'route', 'add', 'default', 'via', `10.77.${index}.1`);
    if (nat) {
      const inside = site.natInside;
      ip('link', 'add', inside, 'netns', edge, 'type', 'veth', 'peer', 'name', site.dev, 'netns', name);
      ip('-n', edge, 'addr', 'add', `192.168.${index}.1/24`, 'dev', inside);
      ip('-n', edge, 'link', 'set', inside, 'up');
      ip('-n', name, 'addr', 'add', `192.168.${index}.2/24`, 'dev', site.dev);
      ip('-n', name, 'link', 'set', site.dev, 'up');
      ip('-n', name, 'route', 'add', 'default', 'via', `192.168.${index}.1`);
      inNs(edge, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
      // Symmetric NAT: every new flow gets a random source port, so the port a STUN server
      // sees is not the port a peer would see.
      inNs(edge, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', edgeDev, '-j', 'MASQUERADE',
        '--random-fully');
    }
    return site;
  }

  /** Delays, jitters, drops and reorders every packet between sites (the router's FORWARD
   *  chain, through NFQUEUE and `impair`), or only those `from` one site (its uplink). */
  async impair({ delayMs, jitterMs = 0, lossPct = 0, reorderPct = 0, seed = 1, from = null }) {
    const source = from ? ['-s', from.addr] : [];
    inNs(ROUTER, 'iptables', '-A', 'FORWARD', ...source, '-j', 'NFQUEUE', '--queue-num', '0',
      '--queue-bypass');
    const child = spawn('ip', ['netns', 'exec', ROUTER, IMPAIR, '--queue', '0',
      '--delay-ms', String(delayMs), '--jitter-ms', String(jitterMs), '--loss-pct', String(lossPct),
      '--reorder-pct', String(reorderPct), '--seed', String(seed)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    this.children.push(child);
    for await (const chunk of child.stdout) {
      if (String(chunk).includes('ready')) return;
    }
    throw new Error('impair did not start');
  }

  /** Runs `command` in `site`'s namespace (stdout piped). */
  spawn(site, command, args, { stderr = 'inherit' } = {}) {
    const child = spawn('ip', ['netns', 'exec', site.ns, command, ...args],
      { stdio: ['ignore', 'pipe', stderr] });
    this.children.push(child);
    return child;
  }

  /** Stops every program of the bed and removes its namespaces. */
  async teardown() {
    for (const child of this.children) child.kill('SIGKILL');
    await sleep(300);
    Bed.teardownAll();
  }

  /** Removes every namespace a bed may have left (killing what still runs in them). */
  static teardownAll() {
    const names = quietly('ip', ['netns', 'list']).split('\n')
      .map((l) => l.split(' ')[0]).filter((n) => n.startsWith('sp-'));
    for (const name of names) {
      for (const pid of quietly('ip', ['netns', 'pids', name]).split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
      }
    }
    for (const name of names) quietly('ip', ['netns', 'del', name]);
  }
}
