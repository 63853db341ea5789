/**
 * Tether's dependency rules (../shared/STYLE.md), checked before every test run (`npm run lint:deps`,
 * called by `pretest`). Domains see the transport only through fanout/; the transport sees no
 * domain; the protocol and the client SDK stay free of server code.
 */
const DOMAINS = '^src/(rooms|membership|sessions|events|playback|inbox|demo)/';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Module cycles make start-up order and reasoning fragile (type-only imports are erased and do not count).',
      from: {},
      to: { circular: true, dependencyTypesNot: ['type-only'], viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'domains-not-on-socket.io',
      severity: 'error',
      comment: 'Domains emit through the fanout port (src/fanout/port.ts), never through Socket.IO.',
      from: { path: DOMAINS },
      to: { path: ['^node_modules/socket\\.io/', '^node_modules/socket\\.io-adapter/', '^node_modules/@socket\\.io/'] },
    },
    {
      name: 'domains-not-on-transport',
      severity: 'error',
      comment: 'Domains register requests, routes, hooks and jobs with the composition root; they never import transport/.',
      from: { path: DOMAINS },
      to: { path: '^src/transport/' },
    },
    {
      name: 'transport-names-no-domain',
      severity: 'error',
      comment: 'The transport implements the fanout port and runs what app.ts hands it; it imports no domain folder.',
      from: { path: '^src/transport/' },
      to: { path: DOMAINS },
    },
    {
      name: 'fanout-is-a-port',
      severity: 'error',
      comment: 'The port is interfaces: it depends on the wire contract only (and types of auth).',
      from: { path: '^src/fanout/' },
      to: { path: '^src/', pathNot: ['^src/fanout/', '^src/protocol/', '^src/auth/'] },
    },
    {
      name: 'protocol-package-imports-nothing',
      severity: 'error',
      comment: '@tether/protocol has no runtime dependency and imports nothing outside itself.',
      from: { path: '^packages/protocol/' },
      to: { pathNot: '^packages/protocol/' },
    },
    {
      name: 'client-package-is-server-free',
      severity: 'error',
      comment: '@tether/client ships to browsers: @tether/protocol and socket.io-client only.',
      from: { path: '^packages/client/' },
      to: { pathNot: ['^packages/client/', '^packages/protocol/', '^@tether/protocol$', '^node_modules/socket\\.io-client/', '^node_modules/engine\\.io-client/', '^node_modules/@socket\\.io/component-emitter/'] },
    },
    {
      name: 'server-not-in-packages',
      severity: 'error',
      comment: 'The packages never reach into the server (src/).',
      from: { path: '^packages/' },
      to: { path: '^src/' },
    },
    {
      name: 'server-protocol-imports-nothing-else',
      severity: 'error',
      comment: "The server's protocol folder (schemas of the contract) imports only the contract.",
      from: { path: '^src/protocol/' },
      to: { path: '^src/', pathNot: '^src/protocol/' },
    },
    {
      name: 'only-app-wires-everything',
      severity: 'error',
      comment: 'app.ts is the composition root: nothing imports it but main.ts.',
      from: { pathNot: '^src/main\\.ts$' },
      to: { path: '^src/app\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
