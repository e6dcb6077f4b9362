/**
 * Listening TCP sockets of a set of processes, read from /proc (what `ss -ltnp` shows): the
 * socket inodes each process holds, matched against /proc/net/tcp and tcp6 in LISTEN state.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { sessionMembers } from '../../src/process/proc.js';

export interface Listener {
  pid: number;
  address: string;
  port: number;
  loopback: boolean;
}

function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

function decodeAddress(hex: string): string {
  if (hex.length === 8) return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
  // IPv6: four little-endian 32-bit words.
  const words = [0, 1, 2, 3].map((w) => hex.slice(w * 8, w * 8 + 8).match(/../g)!.reverse().join(''));
  const groups = words.join('').match(/.{4}/g)!.map((g) => parseInt(g, 16).toString(16));
  const full = groups.join(':');
  if (full === '0:0:0:0:0:ffff:' + groups.slice(6).join(':')) {
    const v4 = words[3]!;
    return [0, 1, 2, 3].map((i) => parseInt(v4.slice(i * 2, i * 2 + 2), 16)).join('.');
  }
  return full;
}

const isLoopback = (a: string) => a.startsWith('127.') || a === '0:0:0:0:0:0:0:1';

export function listeningSockets(pids: number[]): Listener[] {
  const owner = new Map<string, number>();
  for (const pid of pids) for (const inode of socketInodes(pid)) owner.set(inode, pid);
  const out: Listener[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[];
    try {
      lines = readFileSync(table, 'utf8').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A') continue; // LISTEN
      const pid = owner.get(f[9]!);
      if (pid === undefined) continue;
      const [hex, portHex] = f[1]!.split(':');
      const address = decodeAddress(hex!);
      out.push({ pid, address, port: parseInt(portHex!, 16), loopback: isLoopback(address) });
    }
  }
  return out;
}

/** The machine's first non-loopback IPv4 address (what another host on its network would dial). */
export function externalAddress(): string | null {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return null;
}

/** Where a client on another host dials a listener: wildcard binds are reachable on the external address. */
export function dialAddress(l: Listener): string {
  if (l.address === '0.0.0.0' || l.address === '0:0:0:0:0:0:0:0') return externalAddress() ?? '127.0.0.1';
  return l.address.includes(':') ? `[${l.address}]` : l.address;
}

/** Every process of a Ray cluster: the session of its `ray start` and anything started from its temp dir. */
export function clusterPids(ray: { pid: number; tempDir: string }): number[] {
  const pids = new Set(sessionMembers(ray.pid));
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(ray.tempDir)) pids.add(Number(e));
    } catch {
      /* gone */
    }
  }
  return [...pids];
}
