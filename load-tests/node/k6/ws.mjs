// `k6/ws` under the Node shim.
import { ws } from '../k6-shim.mjs';
export const connect = ws.connect;
export default ws;
