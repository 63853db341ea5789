export * from '@tether/protocol';
export * from '@tether/protocol';
export * as schemas from './schemas.js';
export { ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH } from './schemas.js';
