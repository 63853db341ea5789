/**
 * @tether/protocol — the wire contract of Tether's Socket.IO namespace /sync and its error
 * catalogue. No runtime dependencies: event and payload types, the error catalogue, constants,
 * and the payload-shape bound both sides apply.
 */
export * from './events.js';
export * from './errors.js';
export * from './requests.js';
export * from './shape.js';
