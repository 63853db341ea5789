// `k6/execution` under the Node shim.
import { execution } from '../k6-shim.mjs';
export default execution;
