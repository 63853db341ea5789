/**
 * Structural bounds of any payload, checked before schema validation. A payload is already bounded
 * in bytes (MAX_PAYLOAD_BYTES) when it gets here, but not in depth: 20 KB of `[[[[…]]]]` nests
 * 10,000 levels, and every recursive walker after this point (schema validation, Socket.IO's
 * binary detection on broadcast, msgpack in the Redis adapter) would overflow the stack. This walk
 * is iterative, so it cannot overflow itself, and it stops at the first problem.
 *
 * `__proto__` keys are refused rather than carried: JSON.parse keeps them as own properties, but
 * the hops after it (schema copies, the adapter's msgpack decoder, a browser's object spread)
 * assign them, which sets a prototype instead — the key would silently vanish on some paths.
 */
export const MAX_PAYLOAD_DEPTH = 32;

export interface ShapeProblem {
  path: string;
  message: string;
}

export function checkShape(value: unknown, maxDepth = MAX_PAYLOAD_DEPTH): ShapeProblem | null {
  const stack: { value: unknown; depth: number; path: string }[] = [{ value, depth: 0, path: '' }];
  while (stack.length > 0) {
    const { value: v, depth, path } = stack.pop()!;
    if (v === null || typeof v !== 'object') {
      if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') return { path: path || '(root)', message: `${typeof v} is not JSON` };
      if (typeof v === 'number' && !Number.isFinite(v)) return { path: path || '(root)', message: 'numbers must be finite' };
      continue;
    }
    if (depth >= maxDepth) return { path: path || '(root)', message: `nested deeper than ${maxDepth} levels` };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth: depth + 1, path: `${path}[${i}]` });
      continue;
    }
    // Buffers/typed arrays (Socket.IO binary attachments) are leaves: not JSON, refused by schemas.
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) continue;
    for (const key of Object.keys(v)) {
      const child = path ? `${path}.${key}` : key;
      if (key === '__proto__') return { path: child, message: '"__proto__" keys are not accepted' };
      stack.push({ value: (v as Record<string, unknown>)[key], depth: depth + 1, path: child });
    }
  }
  return null;
}
