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

const child = spawn(process.execPath, [main, '--cluster'], { cwd: root, stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
