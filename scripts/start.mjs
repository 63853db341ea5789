// `npm start`: a working local cluster from a fresh clone. Installs dependencies and builds when
// needed (no prior `npm install`), then runs `node dist/main.js --cluster`, which starts a local
// redis-server when REDIS_URL is unset (installing it with apt-get when run as root).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (args) => {
  const r = spawnSync(npm, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`tether: \`npm ${args.join(' ')}\` failed\n`);
    process.exit(r.status ?? 1);
  }
};

function newest(dir) {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}

if (!existsSync(join(root, 'node_modules/.package-lock.json'))) {
  console.log('tether: installing dependencies (npm ci)…');
  run(['ci', '--no-audit', '--no-fund']);
}
const main = join(root, 'dist/main.js');
if (!existsSync(main) || statSync(main).mtimeMs < newest(join(root, 'src'))) {
  console.log('tether: building…');
  run(['run', 'build']);
}

// The demo page at / may create rooms for guests (DEMO_ROOMS) on a local try-out: only while the
// cluster listens on loopback, and never over an explicit DEMO_ROOMS.
const env = { ...process.env };
const host = env.HOST || '127.0.0.1';
if (env.DEMO_ROOMS === undefined && /^(127\.|localhost$|::1$|\[::1\]$)/.test(host)) env.DEMO_ROOMS = 'true';
console.log(`tether: demo room page at http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${env.PORT || 3000}/${env.DEMO_ROOMS === 'true' ? ' (DEMO_ROOMS=true: guests can create rooms there)' : ''}`);

const child = spawn(process.execPath, [main, '--cluster'], { cwd: root, stdio: 'inherit', env });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
