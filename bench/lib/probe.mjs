// Preloaded into every benchmarked server process (Tether and the baselines) with
// `node --expose-gc --import <this file> <app>`. On SIGUSR2 it runs a full GC and writes the
// process's memory figures to $BENCH_PROBE_DIR/<pid>.json, so the harness measures every target
// the same way without touching its code.
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.BENCH_PROBE_DIR;
if (dir) {
  let n = 0;
  process.on('SIGUSR2', () => {
    try {
      if (typeof globalThis.gc === 'function') {
        globalThis.gc();
        globalThis.gc();
      }
      const m = process.memoryUsage();
      const file = join(dir, `${process.pid}.json`);
      writeFileSync(`${file}.tmp`, JSON.stringify({ n: ++n, ts: Date.now(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }));
      renameSync(`${file}.tmp`, file);
    } catch {
      // best effort: the harness times out and reports the probe as missing
    }
  });
}
