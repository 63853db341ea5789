export * from './errors.js';
export * from './events.js';
export * as schemas from './schemas.js';
export { ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH } from './schemas.js';
