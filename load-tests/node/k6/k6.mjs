// `k6` under the Node shim.
import { check, sleep, fail, group, randomSeed } from '../k6-shim.mjs';
export { check, sleep, fail, group, randomSeed };
export default { check, sleep, fail, group, randomSeed };
