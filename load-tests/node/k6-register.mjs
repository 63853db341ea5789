// `node --import ./load-tests/node/k6-register.mjs`: resolve k6/* imports to the shim.
import { register } from 'node:module';

register('./k6-hooks.mjs', import.meta.url);
