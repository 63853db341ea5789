import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One pino root per process, bound to the node id. Domain code takes child loggers bound to
 * { roomId, clientId }. Secrets never reach the output: JWTs, session tokens and passwords are
 * redacted wherever they appear in a logged object.
 */
export function createLogger(opts: { level: string; nodeId: string }): Logger {
  return pino({
    level: opts.level,
    base: { nodeId: opts.nodeId, pid: process.pid },
    redact: {
      paths: [
        'token',
        'sessionToken',
        'password',
        'passwordHash',
        'auth.token',
        'auth.sessionToken',
        '*.token',
        '*.sessionToken',
        '*.password',
        'req.headers.authorization',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
  });
}
