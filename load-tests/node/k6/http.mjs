// `k6/http` under the Node shim.
import { http } from '../k6-shim.mjs';
export const { request, get, head, post, put, patch, del } = http;
export default http;
