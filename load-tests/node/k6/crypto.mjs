// `k6/crypto` under the Node shim.
import { crypto } from '../k6-shim.mjs';
export const { hmac, md5, sha1, sha256, sha384, sha512, randomBytes } = crypto;
export default crypto;
