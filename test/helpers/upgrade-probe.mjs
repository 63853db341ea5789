// Preloaded into a test worker (`node --expose-gc --import <this file> dist/main.js`): counts the
// WebSocket upgrade requests the HTTP server received and how many of them are still alive. On
// SIGUSR2 it runs full GCs, lets finalizers run, and writes {upgrades, alive} to $UPGRADE_PROBE_FILE.
import http from 'node:http';
import { writeFileSync, renameSync } from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';

const file = process.env.UPGRADE_PROBE_FILE;
let upgrades = 0;
let alive = 0;
const registry = new FinalizationRegistry(() => alive--);
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, ...rest) {
  if (event === 'upgrade') {
    upgrades++;
    alive++;
    registry.register(req, null);
  }
  return emit.call(this, event, req, ...rest);
};
process.on('SIGUSR2', async () => {
  for (let i = 0; i < 5; i++) {
    globalThis.gc?.();
    await tick();
  }
  writeFileSync(`${file}.tmp`, JSON.stringify({ upgrades, alive }));
  renameSync(`${file}.tmp`, file);
});
