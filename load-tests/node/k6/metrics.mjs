// `k6/metrics` under the Node shim.
import { Counter, Gauge, Rate, Trend } from '../k6-shim.mjs';
export { Counter, Gauge, Rate, Trend };
export default { Counter, Gauge, Rate, Trend };
