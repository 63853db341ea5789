import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../src/cluster/local-redis.ts';
// The shipped nginx config and this one come from the same template (see test/deploy/nginx.test.ts).
import { render } from '../../nginx/render.mjs';
import { track } from './processes.ts';

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

export interface Nginx {
  url: string;
  stop(): Promise<void>;
}

/** A real nginx on a free loopback port in front of the given worker ports. */
export async function startNginx(workerPorts: number[]): Promise<Nginx> {
  if (!NGINX) throw new Error('nginx is not installed (apt-get install nginx)');
  const prefix = mkdtempSync(join(tmpdir(), 'tether-nginx-'));
  // Run as root, nginx's workers drop to `nobody`: let them use the prefix.
  chmodSync(prefix, 0o777);
  const port = await freePort();
  writeFileSync(join(prefix, 'nginx.conf'), render({ upstreams: workerPorts.map((p) => `127.0.0.1:${p}`), listen: `127.0.0.1:${port}`, prefix, maxFails: 1, failTimeout: '5s' }));
  const child: ChildProcess = track(spawn(NGINX, ['-c', join(prefix, 'nginx.conf'), '-p', prefix, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`nginx not answering: ${stderr}`);
    await sleep(50);
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGQUIT');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
        await exited;
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
