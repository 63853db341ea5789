// `k6/encoding` under the Node shim.
import { encoding } from '../k6-shim.mjs';
export const { b64encode, b64decode } = encoding;
export default encoding;
