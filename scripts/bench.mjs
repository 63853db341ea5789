#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --json out.json] [-- --scenario storm-kill]`: Tether vs three public
// baselines on this machine. See BENCHMARKS.md and bench/harness.mjs.
import { main } from '../bench/harness.mjs';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${err?.usage ? err.message : (err?.stack ?? err)}\n`);
    process.exit(1);
  },
);
