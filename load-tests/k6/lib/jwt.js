/**
 * HS256 JWT signing — PURE (no imports). The HMAC itself is injected so the same code runs in k6
 * (`crypto.hmac('sha256', secret, data, 'base64rawurl')` from k6/crypto) and in Node
 * (`createHmac('sha256', secret).update(data).digest('base64url')`).
 */

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** UTF-8 bytes of a JS string (goja has no TextEncoder). */
export function utf8Bytes(str) {
  const out = [];
  for (let i = 0; i < str.length; i++) {
    let c = str.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
      const d = str.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return out;
}

/** Unpadded base64url of a byte array. */
export function base64UrlBytes(bytes) {
  let s = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    s += B64URL.charAt(n >> 18) + B64URL.charAt((n >> 12) & 63) + B64URL.charAt((n >> 6) & 63) + B64URL.charAt(n & 63);
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    s += B64URL.charAt(n >> 18) + B64URL.charAt((n >> 12) & 63);
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    s += B64URL.charAt(n >> 18) + B64URL.charAt((n >> 12) & 63) + B64URL.charAt((n >> 6) & 63);
  }
  return s;
}

/** Unpadded base64url of the UTF-8 encoding of a string. */
export function base64UrlString(str) {
  return base64UrlBytes(utf8Bytes(str));
}

/**
 * Signs `claims` as an HS256 JWT. `hmacBase64Url(secret, data)` must return the unpadded
 * base64url HMAC-SHA256 of the UTF-8 string `data`. `iat` (and `exp` when `ttlSeconds` > 0) are
 * added unless present; `nowSeconds` defaults to the wall clock.
 */
export function signJwt(claims, secret, hmacBase64Url, opts) {
  if (!secret) throw new Error('signJwt: empty secret');
  const o = opts || {};
  const now = o.nowSeconds !== undefined ? o.nowSeconds : Math.floor(Date.now() / 1000);
  const body = {};
  const keys = Object.keys(claims || {});
  for (let i = 0; i < keys.length; i++) body[keys[i]] = claims[keys[i]];
  if (body.iat === undefined) body.iat = now;
  const ttl = o.ttlSeconds === undefined ? 3600 : o.ttlSeconds;
  if (body.exp === undefined && ttl > 0) body.exp = now + ttl;
  const signingInput = base64UrlString(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + '.' + base64UrlString(JSON.stringify(body));
  const sig = String(hmacBase64Url(secret, signingInput)).replace(/=+$/, '');
  return signingInput + '.' + sig;
}
